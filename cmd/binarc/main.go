// Command binarc keeps MySQL and MariaDB clusters restorable to any second
// of the last 30 days from an S3-compatible bucket.
//
// This package is wiring only: each command parses its flags, calls one
// library function and prints its result. Logic belongs in the packages.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/alecthomas/kong"
	"github.com/binarc/binarc/restore"
	kongcompletion "github.com/jotaen/kong-completion"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// cli is the command line. Every flag can also come from the environment
// variable named beside it.
type cli struct {
	Log logFlags `embed:"" prefix:"log-"`

	Stream streamCmd `cmd:"" help:"Archive a primary's binlog to the store, as a replica, continuously."`
	Ls     lsCmd     `cmd:"" help:"List the archive: timelines, binlog files, byte ranges, times."`
	Binlog binlogCmd `cmd:"" help:"Work with archived binlog files."`

	Snapshot snapshotCmd `cmd:"" help:"Take a full backup of a replica (SQL thread stopped, IO thread running) into the store, once or on a schedule."`
	Prune    pruneCmd    `cmd:"" help:"Delete what no restore to the last --keep (30d) needs: older snapshots and the binlog before them."`
	Verify   verifyCmd   `cmd:"" help:"Re-read the whole archive (zstd checksums, every event's CRC32, contiguity, timelines, snapshots), or with --snapshot one snapshot; exit status 1 if anything is wrong."`
	Restore  restoreCmd  `cmd:"" help:"Restore to a time, a binlog position or a GTID."`
	Drill    drillCmd    `cmd:"" help:"Prove the archive restores: restore the newest snapshot and binlog into a scratch directory, compare with a replica (or check it), record the result and how long it took."`
	Serve    serveCmd    `cmd:"" help:"Serve the archive to MariaDB replicas over the replication protocol, as their primary."`
	Keygen   keygenCmd   `cmd:"" help:"Create a signing key (--sign-key FILE) and print its public key."`
	Version  versionCmd  `cmd:"" help:"Print the version."`

	Completion completionCmd `cmd:"" help:"Print how to turn on tab completion in bash, zsh or fish; with -c, the shell code itself: source <(binarc completion -c bash)."`
	Man        manCmd        `cmd:"" help:"Print the manual page (roff): binarc man | man -l -, or binarc man > /usr/local/share/man/man1/binarc.1."`
}

type binlogCmd struct {
	Fetch  fetchCmd  `cmd:"" help:"Rebuild archived binlog files, byte for byte, into a directory."`
	Events eventsCmd `cmd:"" help:"List archived transactions (time, GTID, position, statement) to find the one to stop before."`
}

type versionCmd struct{}

func (versionCmd) Run() error {
	fmt.Println("binarc", version)
	return nil
}

// usageError is bad input: exit status 2.
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

func main() {
	if len(os.Args) > 1 && os.Args[1] == restore.JailCommand {
		// A restore's confined program: set up its jail and exec it.
		os.Exit(restore.RunJail())
	}
	code := run(os.Args[1:])
	testReportPeakRSS()
	os.Exit(code)
}

func run(args []string) int {
	var c cli
	parser, err := kong.New(&c,
		kong.Name("binarc"),
		kong.Description("Streams MySQL/MariaDB binlogs to S3 and restores to any point in time."),
		kong.UsageOnError(),
		kong.Exit(func(code int) { panic(exitCode(code)) }),
	)
	if err != nil {
		fmt.Fprintln(os.Stderr, "binarc:", err)
		return 2
	}
	code := func() (code int) {
		defer func() {
			if r := recover(); r != nil {
				if c, ok := r.(exitCode); ok {
					code = int(c)
					return
				}
				panic(r)
			}
		}()
		// Answers the shell's completion request (COMP_LINE set) and exits.
		kongcompletion.Register(parser)
		kctx, err := parser.Parse(args)
		if err != nil {
			fmt.Fprintf(os.Stderr, "binarc: %v\n", err)
			return 2
		}
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
		defer stop()
		log, err := c.Log.logger()
		if err != nil {
			fmt.Fprintf(os.Stderr, "binarc: %v\n", err)
			return 2
		}
		kctx.BindTo(ctx, (*context.Context)(nil))
		kctx.Bind(log)
		if err := kctx.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "binarc: error: %v\n", err)
			var ue usageError
			if errors.As(err, &ue) {
				return 2
			}
			return 1
		}
		return 0
	}()
	return code
}

type exitCode int
