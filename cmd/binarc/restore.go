package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/binarc/binarc/internal/progress"
	"github.com/binarc/binarc/replication"
	"github.com/binarc/binarc/restore"
	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"
)

type restoreCmd struct {
	storeFlags
	To                 string   `required:"" help:"Where to stop: a time with its zone (2026-11-20T13:45:00Z), a binlog position (mysql-bin.000042:1187, or TIMELINE/mysql-bin.000042:1187 when several timelines hold that file), a GTID (applied, inclusive), or latest."`
	SkipGTID           []string `name:"skip-gtid" placeholder:"GTID" help:"Leave out this transaction (repeatable): everything but the bad DROP."`
	Datadir            string   `type:"path" help:"Restore the physical snapshot into this new or empty directory, bring it to the target, and leave it ready to start."`
	Target             string   `env:"BINARC_TARGET" placeholder:"URL" help:"Restore into this running server instead (mysql://USER@HOST:PORT): a logical snapshot, or with --from a server already at those coordinates. Password from BINARC_TARGET_PASSWORD or --target-password-file."`
	TargetPasswordFile string   `env:"BINARC_TARGET_PASSWORD_FILE" type:"path" placeholder:"FILE" help:"File holding the target server's password."`
	From               string   `placeholder:"[TIMELINE/]FILE:POS" help:"Use no snapshot: the --target server's data already stands at these binlog coordinates (name the timeline when several hold the file)."`
	Snapshot           string   `placeholder:"ID" help:"Start from this snapshot instead of the newest one that fits."`
	DryRun             bool     `help:"Fetch and check what the restore needs, print the plan, and change nothing."`
	JSON               bool     `help:"Print the plan as one JSON object (schema: README, Automation: JSON output) instead of text."`
	WorkDir            string   `type:"path" help:"Directory for the fetched binlog files (default: a temporary one, removed afterwards)."`
	targetTLSFlags
	identityFlags
	trustFlags
	ForceTarget   bool   `help:"Restore into --target even if it is a server the archive was taken from, or holds user data (as a server given with --from does)."`
	TargetLogBin  bool   `help:"Replay into --target with its binary log on (default: sql_log_bin=0, so the restore does not reach its replicas)."`
	Replay        string `default:"auto" enum:"auto,serve,client" help:"How the binlog is applied: serve (the server replicates it from a private binarc serve, with its own applier), client (mariadb-binlog | mariadb), or auto: serve for --datadir, client for --target."`
	NoJail        bool   `help:"Run the programs that read bucket content (the temporary server, mbstream, mariabackup, mariadb-binlog, mariadb) without the jail: as the mysql user still, but able to read and write whatever it can on this host. Only where no mount namespace can be made; binarc warns on every run."`
	ReplayThreads int    `default:"4" placeholder:"N" help:"slave_parallel_threads for --replay serve (optimistic mode); 0 applies serially. 4 was the fastest measured on 2 cores (docs/BENCHMARKS.md): measure on yours."`
}

func (c *restoreCmd) Run(ctx context.Context, log zerolog.Logger) error {
	setRestoreMemoryLimit()
	target, err := restore.ParseTarget(c.To)
	if err != nil {
		return usageError{err}
	}
	req := restore.RestoreRequest{Target: target, Skip: c.SkipGTID, Datadir: c.Datadir, SnapshotID: c.Snapshot, DryRun: c.DryRun, Log: log,
		ForceTarget: c.ForceTarget, TargetLogBin: c.TargetLogBin,
		NoJail: c.NoJail, Replay: c.Replay, ReplayThreads: c.ReplayThreads, AfterServerUp: testRestoreHold(log)}
	if c.Replay == "auto" {
		req.Replay = "" // the library's default: serve for --datadir, client for --target
	}
	switch {
	case c.Datadir != "" && c.Target != "":
		return usageError{fmt.Errorf("give --datadir or --target, not both")}
	case c.Datadir == "" && c.Target == "" && !c.DryRun:
		return usageError{fmt.Errorf("say where to restore: --datadir DIR (a physical snapshot, brought to the target) or --target mysql://USER@HOST:PORT (a running server)")}
	case c.From != "" && c.Datadir != "":
		return usageError{fmt.Errorf("--from replays into a running server: use it with --target, not --datadir")}
	}
	if c.From != "" {
		tl, from, ok, err := restore.ParsePosition(c.From)
		if !ok && err == nil {
			err = fmt.Errorf("%q is not [TIMELINE/]FILE:POS (e.g. mysql-bin.000042:1187)", c.From)
		}
		if err != nil {
			return usageError{fmt.Errorf("--from: %w", err)}
		}
		req.From, req.FromTimeline = &from, tl
	}
	if c.Target != "" {
		client, err := c.targetClient(log)
		if err != nil {
			return err
		}
		req.Server = &client
	}
	if req.Trust, err = c.trustFlags.trust(); err != nil {
		return err
	}
	if req.Opener, err = c.identityFlags.opener(log); err != nil {
		return err
	}
	if req.Store, req.Layout, err = c.storeFlags.open(ctx); err != nil {
		return err
	}
	work := c.WorkDir
	if work == "" || c.DryRun {
		// A dry run writes nothing that outlives it: what it fetches to
		// plan goes to a private directory, removed afterwards.
		if work, err = os.MkdirTemp(c.WorkDir, "binarc-restore-"); err != nil {
			return err
		}
		defer os.RemoveAll(work)
		// The confined client programs, which run as the mysql user,
		// read the fetched binlog in it: they may pass, not list.
		if err := os.Chmod(work, 0o711); err != nil {
			return err
		}
	} else if err := os.MkdirAll(work, 0o700); err != nil {
		return fmt.Errorf("--work-dir: %w", err)
	}
	req.WorkDir = work
	started := time.Now()
	req.Progress = progressReporter(log)
	req.PlanOut = func(p *restore.RestorePlan) { printPlan(os.Stdout, p) }
	if c.JSON {
		req.PlanOut = func(p *restore.RestorePlan) { _ = writeJSON(os.Stdout, planJSON(p, c.DryRun)) }
	}
	log.Info().Str("target", target.String()).Msg("planning the restore: choosing a snapshot, fetching and checking the archived binlog")
	plan, err := restore.Restore(ctx, req)
	if err != nil {
		return err
	}
	if !c.DryRun {
		log.Info().Dur("took", time.Since(started).Round(time.Millisecond)).Stringer("stopped_at", plan.Binlog.Stop).Msg("restore done")
	}
	return nil
}

func (c *restoreCmd) targetClient(log zerolog.Logger) (restore.ReplayClient, error) {
	cfg, err := replication.ParseSourceURL(c.Target)
	if err != nil {
		return restore.ReplayClient{}, usageError{fmt.Errorf("--target: %w", err)}
	}
	if cfg.Password != "" {
		log.Warn().Msg("the target URL carries a password, which shows in ps and shell history: prefer BINARC_TARGET_PASSWORD or --target-password-file")
	}
	if cfg.Password, err = password(cfg.Password, "BINARC_TARGET_PASSWORD", c.TargetPasswordFile, "--target-password-file"); err != nil {
		return restore.ReplayClient{}, err
	}
	tlsOpts, err := c.targetTLSFlags.options()
	if err != nil {
		return restore.ReplayClient{}, err
	}
	return restore.ReplayClient{Host: cfg.Host, Port: cfg.Port, User: cfg.User, Password: cfg.Password, TLS: tlsOpts}, nil
}

// progressReporter shows replay progress: a bar that redraws itself on a
// terminal, a log line every 10 s otherwise.
func progressReporter(log zerolog.Logger) func(restore.ProgressInfo) {
	r := &progress.Reporter{What: "replay", Items: "transactions", Log: log, Every: 10 * time.Second}
	if isatty.IsTerminal(os.Stderr.Fd()) {
		r.Terminal = os.Stderr
	}
	return func(p restore.ProgressInfo) {
		r.Update(progress.State{Bytes: p.Bytes, TotalBytes: p.TotalBytes, Items: p.Transactions, TotalItems: p.TotalTransactions})
	}
}
