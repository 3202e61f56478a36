package integration

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/binarc/binarc/integration/testenv"
)

// TestPurgedBinlogsStartNewTimeline stops the archiver, lets the primary
// purge binlogs it never archived, and restarts it: it must not stitch
// across the hole but start a new timeline, loudly, that records where the
// old one ended.
func TestPurgedBinlogsStartNewTimeline(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testenv.MariaDBOptions{})
	ctx := context.Background()
	p := e.start(e.streamArgs()...)
	if err := writeLoad(ctx, e.primary, loadOptions{From: 0, To: 60, FlushAt: 30}); err != nil {
		t.Fatal(err)
	}
	e.waitArchived(time.Minute)
	p.stop(t)
	before := e.primary.Query(t, "SHOW BINARY LOGS")

	// Written and purged while nobody archives.
	if err := writeLoad(ctx, e.primary, loadOptions{From: 60, To: 120, FlushAt: 20}); err != nil {
		t.Fatal(err)
	}
	cur := e.primary.Query(t, "SHOW MASTER STATUS")[0][0]
	e.primary.Exec(t, "PURGE BINARY LOGS TO '"+cur+"'")

	p = e.start(e.streamArgs()...)
	if err := writeLoad(ctx, e.primary, loadOptions{From: 120, To: 150}); err != nil {
		t.Fatal(err)
	}
	e.waitArchived(time.Minute)
	p.stop(t)
	e.compareWithPrimary() // the new timeline holds everything the primary still has

	if n := len(logLines(p.out.String(), "ARCHIVE BREAK")); n != 1 {
		t.Errorf("ARCHIVE BREAK logged %d times; want 1", n)
	}
	out, code := e.run("ls", "--store", e.store, "--cluster", e.cluster)
	if code != 0 {
		t.Fatalf("ls: %s", out)
	}
	t.Logf("binarc ls:\n%s", out)
	lastArchived := before[len(before)-1][0]
	for _, want := range []string{"timeline 000001-", "timeline 000002-", "purged", "follows timeline 000001-", lastArchived} {
		if !strings.Contains(out, want) {
			t.Errorf("ls lacks %q:\n%s", want, out)
		}
	}
	// The old timeline is untouched: its files are still there, complete
	// up to where it ended.
	if !strings.Contains(out, "mysql-bin.000001") {
		t.Errorf("old timeline's files missing:\n%s", out)
	}
}

// TestFailoverStartsNewTimeline points the archiver at another server (a
// promoted replica has another server_id): a new timeline, never a
// continuation of the old one.
func TestFailoverStartsNewTimeline(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testenv.MariaDBOptions{ServerID: 1})
	p := e.start(e.streamArgs()...)
	e.primary.Exec(t, "CREATE DATABASE old_primary")
	e.waitArchived(time.Minute)
	p.stop(t)

	promoted := testenv.StartMariaDB(t, testenv.MariaDBOptions{ServerID: 2})
	promoted.CreateReplicationUser(t, replUser, replPass)
	e.primary = promoted
	p = e.start(e.streamArgs()...)
	promoted.Exec(t, "CREATE DATABASE new_primary", "FLUSH BINARY LOGS", "CREATE DATABASE more")
	e.waitArchived(time.Minute)
	p.stop(t)
	e.compareWithPrimary()
	out, _ := e.run("ls", "--store", e.store, "--cluster", e.cluster)
	if !strings.Contains(out, "timeline 000002-") || !strings.Contains(out, "another server") {
		t.Errorf("ls after failover:\n%s", out)
	}
}
