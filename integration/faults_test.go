package integration

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/binarc/binarc/integration/testenv"
)

// TestStoreOutage stops the S3 server while the primary keeps writing: the
// archiver holds what it has, stops reading when its buffer is full,
// retries, and stores everything once the store is back.
func TestStoreOutage(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testenv.MariaDBOptions{MaxBinlogSize: 256 << 10})
	ctx := context.Background()
	p := e.start(e.streamArgs("--max-buffer", "512KiB")...)
	if err := writeLoad(ctx, e.primary, loadOptions{From: 0, To: 50}); err != nil {
		t.Fatal(err)
	}
	e.waitArchived(time.Minute)
	e.s3.Stop()
	if err := writeLoad(ctx, e.primary, loadOptions{From: 50, To: 300, FlushAt: 100}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	p.running(t, "the archiver died of a store outage")
	e.s3.Start()
	e.waitArchived(2 * time.Minute)
	p.stop(t)
	e.compareWithPrimary()
	out := p.out.String()
	if n := len(logLines(out, "failing; retrying")); n != 1 {
		t.Errorf("store failure logged %d times; want once per outage", n)
	}
	if n := len(logLines(out, "recovered")); n < 1 {
		t.Errorf("store recovery not logged")
	}
}

// TestStoreDownAtStart starts the archiver while the S3 server is down:
// a store that cannot be reached is waited for, not bad input.
func TestStoreDownAtStart(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testenv.MariaDBOptions{})
	e.primary.Exec(t, "CREATE DATABASE written_before")
	e.s3.Stop()
	p := e.start(e.streamArgs()...)
	p.waitLog(t, "object store unreachable", time.Minute)
	time.Sleep(time.Second)
	p.running(t, "the archiver gave up on a store that is down")
	e.s3.Start()
	e.waitArchived(time.Minute)
	p.stop(t)
	e.compareWithPrimary()
}

// TestConnectionCutAndPartition cuts the archiver's connection to the
// primary, then freezes it (packets stop, sockets stay open): the first is
// noticed at once, the second by the read timeout; both resume without a
// gap or a repeated byte.
func TestConnectionCutAndPartition(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testenv.MariaDBOptions{})
	ctx := context.Background()
	proxy := startProxy(t, e.primary.Addr())
	args := e.streamArgs("--heartbeat", "500ms", "--read-timeout", "3s")
	args[2] = "mysql://" + replUser + "@" + proxy.Addr()
	p := e.start(args...)
	if err := writeLoad(ctx, e.primary, loadOptions{From: 0, To: 50}); err != nil {
		t.Fatal(err)
	}
	e.waitArchived(time.Minute)

	proxy.Cut()
	if err := writeLoad(ctx, e.primary, loadOptions{From: 50, To: 100, FlushAt: 30}); err != nil {
		t.Fatal(err)
	}
	e.waitArchived(time.Minute)

	proxy.Freeze()
	if err := writeLoad(ctx, e.primary, loadOptions{From: 100, To: 150}); err != nil {
		t.Fatal(err)
	}
	e.waitArchived(time.Minute) // only the read timeout can get it there
	p.stop(t)
	e.compareWithPrimary()
	out := p.out.String()
	if n := len(logLines(out, "lost the primary")); n != 2 {
		t.Errorf("'lost the primary' logged %d times for a cut and a partition; want 2", n)
	}
	if !strings.Contains(out, "reconnected to the primary") {
		t.Errorf("no reconnect logged")
	}
}
