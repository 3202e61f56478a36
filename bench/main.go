// Command bench measures binarc stream against a real MariaDB primary and a
// versitygw S3 server on 127.0.0.1, in one run:
//
//   - catch-up throughput: a binlog backlog written before binarc starts,
//     archived to S3, against mariadb-binlog --raw copying the same backlog
//     to local disk;
//   - the loss window under a steady commit load: from a commit returning to
//     the archive holding its bytes;
//   - binarc's peak memory and CPU time per MiB archived;
//   - replay throughput: binarc restore of the archive into an empty server,
//     against mariadb-binlog | mariadb of the primary's binlog files;
//   - snapshot throughput: binarc snapshot of a replica into S3, against
//     mariabackup | zstd to local disk.
//
// Usage (from the repository root, as make bench runs it):
//
//	go run ./bench [-quick] [-backlog-mb 500] [-out bench/results.json]
//
// It builds cmd/binarc itself, prints a Markdown table on stdout, progress
// on stderr, and writes the numbers as JSON to -out. Sizes are in MiB.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/binarc/binarc/internal/testenv"
)

type options struct {
	quick         bool
	backlogMiB    int
	maxBinlogMiB  int
	loadDuration  time.Duration
	loadRate      int
	sampleEvery   int
	out           string
	binarc        string
	binarcArgs    []string
	catchUpBudget time.Duration
	// snapshotDataMiB is loaded into the replica before the snapshots.
	snapshotDataMiB int
	// encrypt adds the encrypted catch-up and loss window.
	encrypt bool
	core    bool
	// sign adds the signed catch-up (bench/signing.go).
	sign bool
}

func parseFlags() options {
	var o options
	flag.BoolVar(&o.quick, "quick", false, "smoke test: 50 MiB backlog, 16 MiB binlog files, 15 s load (explicit flags still win)")
	flag.IntVar(&o.backlogMiB, "backlog-mb", 500, "binlog backlog to write before binarc starts, in MiB")
	flag.IntVar(&o.maxBinlogMiB, "max-binlog-size-mb", 256, "the primary's max_binlog_size, in MiB")
	flag.DurationVar(&o.loadDuration, "load", 60*time.Second, "duration of the steady load")
	flag.IntVar(&o.loadRate, "rate", 200, "commits per second of the steady load")
	flag.IntVar(&o.sampleEvery, "sample-every", 10, "time the durability of every n-th commit")
	flag.StringVar(&o.out, "out", filepath.Join("bench", "results.json"), "JSON results file")
	flag.StringVar(&o.binarc, "binarc", "", "binarc binary to measure (default: go build ./cmd/binarc)")
	binarcArgs := flag.String("binarc-args", "", "extra flags for binarc stream, space-separated, to compare tunings (default: none, binarc's defaults)")
	flag.DurationVar(&o.catchUpBudget, "catch-up-timeout", 10*time.Minute, "give up on the catch-up after this long")
	flag.IntVar(&o.snapshotDataMiB, "snapshot-data-mb", 400, "documents to load into the replica before the snapshot measurement, in MiB")
	flag.BoolVar(&o.core, "core", false, "only the archive's core figures: the backlog, mariadb-binlog, binarc's catch-up, the loss window and the restore (for before/after comparisons of a change; skips the snapshot and semi-sync phases)")
	flag.BoolVar(&o.encrypt, "encrypt", false, "also measure a second binarc stream with --encrypt-to (age) on the same backlog and load: catch-up throughput and CPU per MiB against the plain one, and its loss window")
	flag.BoolVar(&o.sign, "sign", false, "also measure a binarc stream with --sign-key (ed25519) catching up on the same backlog, between two plain ones: throughput and CPU per MiB against plain")
	flag.Parse()
	o.binarcArgs = strings.Fields(*binarcArgs)
	if o.quick {
		set := map[string]bool{}
		flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if !set["backlog-mb"] {
			o.backlogMiB = 50
		}
		if !set["max-binlog-size-mb"] {
			o.maxBinlogMiB = 16
		}
		if !set["load"] {
			o.loadDuration = 15 * time.Second
		}
		if !set["snapshot-data-mb"] {
			o.snapshotDataMiB = 40
		}
	}
	return o
}

func main() {
	o := parseFlags()
	if o.backlogMiB < 1 || o.maxBinlogMiB < 1 || o.loadRate < 1 || o.sampleEvery < 1 || o.loadDuration <= 0 || o.snapshotDataMiB < 1 {
		fmt.Fprintln(os.Stderr, "bench: -backlog-mb, -max-binlog-size-mb, -rate, -sample-every, -load and -snapshot-data-mb must be positive")
		os.Exit(2)
	}
	if err := run(o); err != nil {
		if errors.Is(err, errInterrupted) {
			fmt.Fprintln(os.Stderr, "bench: interrupted")
			os.Exit(130)
		}
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

const (
	replUser   = "binarc"
	cluster    = "bench"
	s3Prefix   = "archive"
	lossGrace  = 15 * time.Second
	settleTime = 2 * time.Second
)

var errInterrupted = errors.New("interrupted")

func run(o options) (err error) {
	began := time.Now()
	machine := newMachineMeter()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	defer func() {
		if err != nil && ctx.Err() != nil {
			err = errInterrupted // whatever failed, failed because of the signal
		}
	}()
	var cl cleanups
	defer cl.run()
	finished := make(chan struct{})
	defer close(finished)
	go onSignal(cancel, &cl, finished)

	tmp, err := os.MkdirTemp("", "binarc-bench-")
	if err != nil {
		return err
	}
	cl.add(func() { os.RemoveAll(tmp) })
	// binarc restore's confined programs run as the mysql user, which must
	// reach the work directories below tmp.
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}

	r := newResults(o)

	binarc, err := buildBinarc(ctx, o.binarc, tmp)
	if err != nil {
		return err
	}
	r.Config.BinarcRevision = revision(binarc)

	s3, db, replPass, err := startServers(ctx, o, tmp, &cl)
	if err != nil {
		return err
	}
	r.Machine.MariaDBVersion = db.Version
	b := &bench{ctx: ctx, opts: o, cl: &cl, tmp: tmp, binarc: binarc, db: db, s3: s3, replPass: replPass, r: r}
	rb := &restoreAndBackup{bench: b}
	phases := b.phases(o, rb)
	for _, phase := range phases {
		if err := phase(); err != nil {
			return err
		}
	}
	if *snapshotOnly || *semiSyncOnly || *serveReplayOnly || *serveReadersOnly || *drillOnly {
		return nil
	}

	r.TotalSeconds = time.Since(began).Seconds()
	r.OtherCPUSeconds = machine.otherSeconds()
	r.writeMarkdown(os.Stdout)
	if err := r.writeJSON(o.out); err != nil {
		return fmt.Errorf("write %s: %w", o.out, err)
	}
	logf("wrote %s", o.out)
	return nil
}

// onSignal: SIGINT or SIGTERM cancels the run, whose cleanups kill the
// servers; a second signal, or a run that does not stop within 20 s, runs
// the cleanups here and exits. It returns when finished is closed.
func onSignal(cancel context.CancelFunc, cl *cleanups, finished <-chan struct{}) {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	select {
	case <-sigs:
	case <-finished:
		return
	}
	logf("interrupted: stopping")
	cancel()
	select {
	case <-sigs:
	case <-time.After(20 * time.Second):
	case <-finished:
		return
	}
	cl.run()
	os.Exit(130)
}

// buildBinarc returns the binarc to measure: the one given, or one built
// into tmp.
func buildBinarc(ctx context.Context, given, tmp string) (string, error) {
	if given != "" {
		return given, nil
	}
	binarc := filepath.Join(tmp, "binarc")
	logf("building binarc")
	// -buildvcs=auto overrides a GOFLAGS=-buildvcs=false, so the report
	// can name the revision measured.
	build := exec.CommandContext(ctx, "go", "build", "-buildvcs=auto", "-o", binarc, "github.com/binarc/binarc/cmd/binarc")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return "", fmt.Errorf("go build ./cmd/binarc: %w", err)
	}
	return binarc, nil
}

// startServers starts versitygw and the primary under tmp, with the
// replication user binarc connects as; it returns that user's password.
func startServers(ctx context.Context, o options, tmp string, cl *cleanups) (*testenv.S3Server, *testenv.MariaDB, string, error) {
	logf("starting versitygw and mariadbd under %s", tmp)
	s3, err := startS3(ctx, tmp, cl)
	if err != nil {
		return nil, nil, "", err
	}
	db, err := startMariaDB(ctx, tmp, int64(o.maxBinlogMiB)*mebi, cl)
	if err != nil {
		return nil, nil, "", err
	}
	replPass := "bench-" + testenv.RandomHex(8)
	for _, host := range []string{"127.0.0.1", "localhost"} {
		account := fmt.Sprintf("'%s'@'%s'", replUser, host)
		if err := db.Exec(ctx, "CREATE USER "+account+" IDENTIFIED BY '"+replPass+"'",
			"GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO "+account); err != nil {
			return nil, nil, "", err
		}
	}
	return s3, db, replPass, nil
}

// phases are the bench's measurements, in order, for the flags given.
func (b *bench) phases(o options, rb *restoreAndBackup) []func() error {
	switch {
	case *snapshotOnly:
		return []func() error{b.snapshot} // bench/snapshot.go
	case *semiSyncOnly:
		return []func() error{b.semiSync} // bench/semisync.go
	case *serveReplayOnly:
		return []func() error{b.serveReplay} // bench/serve_replay.go
	case *serveReadersOnly:
		return []func() error{b.serveReaders} // bench/serve_readers.go
	case *drillOnly:
		return []func() error{b.drillBench} // bench/drill.go
	case o.sign:
		// bench/signing.go: the catch-up with --sign-key, beside the
		// plain ones, in the same run.
		return []func() error{b.backlog, b.mariadbBinlog, b.catchUp, b.catchUpSigned, b.lossWindow, rb.replay, rb.backupReplica, b.snapshot, b.semiSync}
	case o.core:
		return []func() error{b.backlog, b.mariadbBinlog, b.catchUp, b.lossWindow, rb.replay}
	case o.encrypt:
		// bench/encryption.go: the same catch-up and loss window with
		// --encrypt-to, beside the plain ones. lossWindow stops the
		// binarc it timed, so the encrypted one goes first.
		return []func() error{b.backlog, b.mariadbBinlog, b.catchUp, b.catchUpEncrypted, b.lossWindowEncrypted, b.lossWindow, rb.replay, rb.backupReplica, b.snapshot, b.semiSync}
	}
	return []func() error{b.backlog, b.mariadbBinlog, b.catchUp, b.lossWindow, rb.replay, rb.backupReplica, b.snapshot, b.semiSync}
}
