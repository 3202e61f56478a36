//go:build binarc_testhooks

package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/binarc/binarc/internal/procfs"
	"github.com/rs/zerolog"
)

// In test builds, BINARC_TEST_NOW (RFC 3339) is the time prunes take as
// now, to age snapshots taken seconds ago, and BINARC_TEST_SNAPSHOT_HOLD (a
// duration) holds a snapshot between stopping the replica's SQL thread and
// starting the backup, so that tests can look at the replica in that state.

var testNow = func() func() time.Time {
	s := os.Getenv("BINARC_TEST_NOW")
	if s == "" {
		return nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		fmt.Fprintf(os.Stderr, "binarc: BINARC_TEST_NOW=%q is not an RFC 3339 time\n", s)
		os.Exit(2)
	}
	return func() time.Time { return t }
}()

func clockNow() time.Time {
	if testNow == nil {
		return time.Time{}
	}
	return testNow()
}

func testSnapshotHold(log zerolog.Logger) func(context.Context) {
	return testHold(log, "BINARC_TEST_SNAPSHOT_HOLD", "holding before the backup")
}

// testRestoreHold holds a restore for BINARC_TEST_RESTORE_HOLD (a
// duration) once its temporary server is up, so that tests can look at
// that server.
func testRestoreHold(log zerolog.Logger) func(context.Context) {
	return testHold(log, "BINARC_TEST_RESTORE_HOLD", "holding with the temporary server up")
}

// testHold is a hold for the duration in environment variable env, or nil
// when it is unset or not a positive duration; the hold logs what (and
// that this is a test build) and ends early when its context does.
func testHold(log zerolog.Logger, env, what string) func(context.Context) {
	d, err := time.ParseDuration(os.Getenv(env))
	if err != nil || d <= 0 {
		return nil
	}
	return func(ctx context.Context) {
		log.Warn().Dur("hold", d).Msg(env + ": " + what + " (test build)")
		select {
		case <-ctx.Done():
		case <-time.After(d):
		}
	}
}

// testReportPeakRSS writes this process's peak resident memory (VmHWM of
// /proc/self/status, e.g. "41236 kB") to BINARC_TEST_PEAK_RSS_FILE, so
// tests can bound binarc's own memory: getrusage of a child started by
// Go's vfork-style exec reports the parent's peak instead.
func testReportPeakRSS() {
	path := os.Getenv("BINARC_TEST_PEAK_RSS_FILE")
	if path == "" {
		return
	}
	if v, err := procfs.StatusField(os.Getpid(), "VmHWM"); err == nil {
		_ = os.WriteFile(path, []byte(v+"\n"), 0o600)
	}
}
