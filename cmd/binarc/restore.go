package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/replication"
	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"
)

type restoreCmd struct {
	storeFlags
	To                 string   `required:"" help:"Where to stop: a time with its zone (2026-11-20T13:45:00Z), a binlog position (mysql-bin.000042:1187), a GTID (applied, inclusive), or latest."`
	SkipGTID           []string `name:"skip-gtid" placeholder:"GTID" help:"Leave out this transaction (repeatable): everything but the bad DROP."`
	Target             string   `env:"BINARC_TARGET" placeholder:"URL" help:"Replay into this running server (mysql://USER@HOST:PORT); its password from BINARC_TARGET_PASSWORD or --target-password-file."`
	TargetPasswordFile string   `env:"BINARC_TARGET_PASSWORD_FILE" type:"path" placeholder:"FILE" help:"File holding the target server's password."`
	From               string   `placeholder:"FILE:POS" help:"The binlog coordinates the target server's data stands at (a snapshot's, or where a replica stopped)."`
	Timeline           string   `help:"Timeline to replay from (default: the newest holding --from)."`
	DryRun             bool     `help:"Fetch and check what the restore needs, print the plan, and change nothing."`
	WorkDir            string   `type:"path" help:"Directory for the fetched binlog files (default: a temporary one, removed afterwards)."`
}

func (c *restoreCmd) Run(ctx context.Context, log zerolog.Logger) error {
	target, err := archive.ParseTarget(c.To)
	if err != nil {
		return usageError{err}
	}
	if c.Target == "" && !c.DryRun {
		return usageError{fmt.Errorf("say where to restore: --target mysql://USER@HOST:PORT replays into a running server (restoring a snapshot into --datadir comes with binarc snapshot)")}
	}
	if c.From == "" {
		return usageError{fmt.Errorf("--from FILE:POS is required: the binlog coordinates the target's data stands at (a snapshot's recorded coordinates)")}
	}
	from, err := parsePosition(c.From)
	if err != nil {
		return usageError{fmt.Errorf("--from: %w", err)}
	}
	var client archive.ReplayClient
	var tools archive.ReplayTools
	if !c.DryRun {
		if client, err = c.targetClient(); err != nil {
			return err
		}
		if tools, err = archive.FindReplayTools(); err != nil {
			return err
		}
	}
	store, layout, err := c.storeFlags.open(ctx)
	if err != nil {
		return err
	}
	work := c.WorkDir
	if work == "" {
		if work, err = os.MkdirTemp("", "binarc-restore-"); err != nil {
			return err
		}
		defer os.RemoveAll(work)
	} else if err := os.MkdirAll(work, 0o700); err != nil {
		return fmt.Errorf("--work-dir: %w", err)
	}
	cat := archive.Catalog{Store: store, Layout: layout}
	log.Info().Str("target", target.String()).Stringer("from", from).Msg("planning the restore: fetching and checking the archived binlog")
	started := time.Now()
	plan, err := cat.Plan(ctx, archive.PlanRequest{Timeline: c.Timeline, From: from, Target: target, Skip: c.SkipGTID, WorkDir: work})
	if err != nil {
		return err
	}
	printPlan(os.Stdout, plan)
	log.Info().Int64("fetched_bytes", plan.StoredBytes).Dur("took", time.Since(started).Round(time.Millisecond)).Msg("archive fetched and checked")
	if c.DryRun {
		return nil
	}
	started = time.Now()
	err = archive.Replay(ctx, plan, client, tools, progressReporter(log, started))
	if err != nil {
		return err
	}
	log.Info().Uint64("bytes", plan.ReplayBytes).Dur("took", time.Since(started).Round(time.Millisecond)).Stringer("stopped_at", plan.Stop).Msg("replay done")
	return nil
}

func (c *restoreCmd) targetClient() (archive.ReplayClient, error) {
	cfg, err := replication.ParseSourceURL(c.Target)
	if err != nil {
		return archive.ReplayClient{}, usageError{fmt.Errorf("--target: %w", err)}
	}
	if p, ok := os.LookupEnv("BINARC_TARGET_PASSWORD"); ok {
		cfg.Password = p
	}
	if c.TargetPasswordFile != "" {
		b, err := os.ReadFile(c.TargetPasswordFile)
		if err != nil {
			return archive.ReplayClient{}, usageError{fmt.Errorf("--target-password-file: %w", err)}
		}
		cfg.Password = strings.TrimRight(strings.SplitN(string(b), "\n", 2)[0], "\r")
	}
	return archive.ReplayClient{Host: cfg.Host, Port: cfg.Port, User: cfg.User, Password: cfg.Password}, nil
}

func parsePosition(s string) (replication.Position, error) {
	file, pos, ok := strings.Cut(s, ":")
	off, err := strconv.ParseUint(pos, 10, 64)
	if !ok || err != nil || archive.ValidateName("binlog file", file) != nil {
		return replication.Position{}, fmt.Errorf("%q is not FILE:POS (e.g. mysql-bin.000042:1187)", s)
	}
	return replication.Position{File: file, Offset: off}, nil
}

func printPlan(w io.Writer, p *archive.Plan) {
	fmt.Fprintf(w, "restore plan\n  timeline:  %s\n  from:      %s\n  target:    %s\n  stop at:   %s (replay ends before this position)\n",
		p.Timeline, p.From, p.Target, p.Stop)
	fmt.Fprintf(w, "  fetch:     %d files, %d bytes stored (checked)\n  replay:    %d bytes of binlog in %d ranges\n", len(p.Files), p.StoredBytes, p.ReplayBytes, len(p.Ranges))
	for _, r := range p.Ranges {
		fmt.Fprintf(w, "    %s [%d, %d)\n", r.File, r.Start, r.Stop)
	}
	for _, s := range p.Skipped {
		fmt.Fprintf(w, "  skipped:   %s %s %s:%d-%d %s\n", s.GTID, s.Time.Format(time.RFC3339), s.File, s.Start, s.End, shorten(s.Summary(), 120))
	}
	if p.Last != nil {
		fmt.Fprintf(w, "  last applied transaction: %s %s %s:%d-%d %s\n", p.Last.GTID, p.Last.Time.Format(time.RFC3339), p.Last.File, p.Last.Start, p.Last.End, shorten(p.Last.Summary(), 120))
	} else {
		fmt.Fprintln(w, "  no transaction to apply: the target already stands there")
	}
}

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// progressReporter shows replay progress: a line that rewrites itself on a
// terminal, a log line per step otherwise.
func progressReporter(log zerolog.Logger, started time.Time) func(done, total uint64) {
	tty := isatty.IsTerminal(os.Stderr.Fd())
	return func(done, total uint64) {
		el := time.Since(started).Seconds()
		rate := float64(done) / max(el, 0.001)
		left := time.Duration(float64(total-done)/max(rate, 1)) * time.Second
		if tty {
			fmt.Fprintf(os.Stderr, "\rreplay: %d/%d MiB, %.1f MiB/s, %s left   ", done>>20, total>>20, rate/(1<<20), left.Round(time.Second))
			if done == total {
				fmt.Fprintln(os.Stderr)
			}
			return
		}
		log.Info().Uint64("done_bytes", done).Uint64("total_bytes", total).Float64("mib_per_s", rate/(1<<20)).Msg("replay progress")
	}
}
