// Command chaos runs binarc's seeded fault campaign (make chaos): a
// master/master pair with a replica, binarc stream following the writable
// server, faults drawn from -seed, and the independent checker. It writes
// report.txt and report.json into -dir and exits 1 when a check failed.
//
//	go run ./chaos/cmd -seed 7 -duration 10m -binarc bin/binarc
package main

import (
	"context"
	"flag"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/binarc/binarc/chaos"
	"github.com/rs/zerolog"
)

func main() {
	seed := flag.Uint64("seed", uint64(time.Now().UnixNano()%100000), "the schedule's seed (a failing seed reruns the same schedule)")
	duration := flag.Duration("duration", 10*time.Minute, "how long faults are injected")
	dir := flag.String("dir", "", "directory for the servers, logs and report (default: a new one under $TMPDIR)")
	binarc := flag.String("binarc", "bin/binarc", "the binarc binary to test")
	restores := flag.Int("restores", 5, "restore points to check (K)")
	semiSync := flag.Bool("semi-sync", false, "binarc stream --semi-sync, the writable master a semi-synchronous primary: no acknowledged transaction may be lost")
	binlogFormat := flag.String("binlog-format", "", "the servers' binlog_format: ROW (the default here), MIXED (MariaDB's default) or STATEMENT")
	flag.Parse()
	log := zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr, TimeFormat: time.TimeOnly}).With().Timestamp().Logger()
	format := strings.ToUpper(*binlogFormat)
	switch format {
	case "", "ROW", "MIXED", "STATEMENT":
	default:
		log.Error().Str("binlog_format", *binlogFormat).Msg("-binlog-format takes ROW, MIXED or STATEMENT")
		os.Exit(2)
	}
	cfg := chaos.Config{Seed: *seed, Duration: *duration, Dir: *dir, Binarc: *binarc, Restores: *restores, SemiSync: *semiSync, BinlogFormat: format, Log: log}
	os.Exit(run(log, cfg))
}

func run(log zerolog.Logger, cfg chaos.Config) int {
	seed := cfg.Seed
	var err error
	if cfg.Dir == "" {
		if cfg.Dir, err = os.MkdirTemp("", "binarc-chaos-"); err != nil {
			log.Error().Err(err).Msg("campaign directory")
			return 1
		}
	}
	if cfg.Binarc, err = filepath.Abs(cfg.Binarc); err != nil {
		log.Error().Err(err).Msg("binarc path")
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log.Info().Uint64("seed", seed).Dur("duration", cfg.Duration).Bool("semi_sync", cfg.SemiSync).Str("dir", cfg.Dir).Msg("fault campaign starting")
	rep, err := chaos.Run(ctx, cfg)
	if err != nil {
		log.Error().Err(err).Uint64("seed", seed).Msg("the campaign could not run")
		return 1
	}
	path, err := rep.Save()
	if err != nil {
		log.Error().Err(err).Msg("write the report")
		return 1
	}
	ev := log.Info()
	if !rep.Passed() {
		ev = log.Error().Strs("failures", rep.Failures)
	}
	ev.Uint64("seed", seed).Str("report", path).Int("restores", len(rep.Restores)).Int("losses", len(rep.Losses)).
		Bool("passed", rep.Passed()).Msg("fault campaign done")
	if !rep.Passed() {
		return 1
	}
	return 0
}
