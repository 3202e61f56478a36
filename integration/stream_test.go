package integration

import (
	"context"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/binarc/binarc/integration/testenv"
)

// TestStreamByteForByte archives a mixed load with rotations by FLUSH and
// by size and a row event over 16 MiB, then rebuilds every file with
// binarc binlog fetch: each must equal the primary's own file.
func TestStreamByteForByte(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testenv.MariaDBOptions{MaxBinlogSize: 256 << 10})
	ctx := context.Background()
	// History written before the archiver starts: a new archive begins at
	// the oldest binlog the primary has.
	if err := writeLoad(ctx, e.primary, loadOptions{From: 0, To: 40, FlushAt: 20}); err != nil {
		t.Fatal(err)
	}
	p := e.start(e.streamArgs()...)
	if err := writeLoad(ctx, e.primary, loadOptions{From: 40, To: 400, FlushAt: 90, BigRow: true}); err != nil {
		t.Fatal(err)
	}
	e.waitArchived(2 * time.Minute)
	if n := e.compareWithPrimary(); n < 6 {
		t.Fatalf("only %d binlog files: the load should have rotated by FLUSH and by size several times", n)
	}
	// Once caught up, the archiver compacts every complete file into one
	// object; fetch gives the same bytes from either form.
	e.waitCompacted(time.Minute)
	e.compareWithPrimary()
	p.stop(t)
	// A clean stop flushes and leaves everything stored and readable.
	e.compareWithPrimary()
	out, code := e.run("ls", "--store", e.store, "--cluster", e.cluster, "--source", e.primary.SourceURL(replUser, ""))
	if code != 0 || !strings.Contains(out, "complete") || !strings.Contains(out, "up to date") {
		t.Fatalf("binarc ls (%d):\n%s", code, out)
	}
}

// TestStreamSurvivesKillsAndPrimaryRestart kills the archiver with SIGKILL
// several times while the load runs, and restarts the primary (clean stop
// and SIGKILL) under it: the archive must still equal the primary's files,
// nothing missing and nothing twice.
func TestStreamSurvivesKillsAndPrimaryRestart(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testenv.MariaDBOptions{MaxBinlogSize: 128 << 10})
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	p := e.start(e.streamArgs()...)
	for round := 0; round < 4; round++ {
		done := make(chan error, 1)
		go func() {
			done <- writeLoad(ctx, e.primary, loadOptions{From: round * 150, To: round*150 + 150, FlushAt: 40})
		}()
		time.Sleep(time.Duration(200+rng.IntN(800)) * time.Millisecond)
		p.kill()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		p = e.start(e.streamArgs()...)
	}
	// The primary restarts under a running archiver: cleanly, then hard.
	e.waitArchived(2 * time.Minute)
	p.waitLog(t, "streaming from the primary", time.Minute)
	e.primary.Stop(t)
	time.Sleep(300 * time.Millisecond)
	e.primary.Start(t)
	if err := writeLoad(ctx, e.primary, loadOptions{From: 600, To: 700}); err != nil {
		t.Fatal(err)
	}
	e.waitArchived(2 * time.Minute)
	e.primary.Kill(t)
	e.primary.Start(t)
	if err := writeLoad(ctx, e.primary, loadOptions{From: 700, To: 760}); err != nil {
		t.Fatal(err)
	}
	e.waitArchived(2 * time.Minute)
	e.compareWithPrimary()
	if got := len(logLines(p.out.String(), "lost the primary")); got != 2 {
		t.Errorf("the archiver logged 'lost the primary' %d times for two primary restarts; want once per outage", got)
	}
	if got := len(logLines(p.out.String(), "ARCHIVE BREAK")); got != 0 {
		t.Errorf("a primary restart must not break the timeline")
	}
}
