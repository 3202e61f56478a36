package integration

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/integration/testenv"
)

// TestFailoverRejoinsAnOlderBranch: primary A (timeline 1) with replicas
// R1 and R2; R2 stops replicating early. A dies, R1 is promoted and
// written (timeline 2); then R1 is set read-only and R2 — which never had
// A's last rows nor any of R1's — is made the writable one (timeline 3).
// R2's history meets the archive on timeline 1, before timeline 2 began:
// the join of timeline 3 names timeline 1 as its parent, and a restore to
// latest equals R2, one to a point on timeline 2 equals R1 then, and one
// before the failover equals A. Read as a line (timeline 3 after 2), the
// history holds R2's copies of A's rows after timeline 2's own, and the
// rows R2 never had: the 60-minute campaign's bug.
func TestFailoverRejoinsAnOlderBranch(t *testing.T) {
	t.Parallel()
	e := newSnapEnv(t) // A = e.primary (server_id 1), R2 = e.replica (2)
	a, r2 := e.primary, e.replica
	r1 := testenv.StartReplica(t, a, testenv.ReplicaOptions{ServerID: 3})
	r1.Exec(t, "SET GLOBAL read_only = ON")
	r2.Exec(t, "SET GLOBAL read_only = ON")
	ctx := context.Background()
	load := func(m *testenv.MariaDB, from, to int) {
		t.Helper()
		if err := writeLoad(ctx, m, loadOptions{From: from, To: to, FlushAt: 25}); err != nil {
			t.Fatal(err)
		}
	}
	p := e.start(append([]string{"stream", "--source", multiSource(a, r1, r2)}, e.streamArgs()[3:]...)...)
	load(a, 0, 40)
	r2.WaitCaughtUp(t, a, time.Minute)
	if out, code := e.run(e.snapshotArgs(physUser)...); code != 0 {
		t.Fatalf("snapshot of R2 failed:\n%s", out)
	}
	load(a, 40, 60)
	r1.WaitCaughtUp(t, a, time.Minute)
	r2.WaitCaughtUp(t, a, time.Minute)
	r2.Exec(t, "STOP SLAVE")
	cpA := takeCheckpoint(t, a, "on A, what R2 has")
	load(a, 60, 80) // R1 gets them, R2 never does
	r1.WaitCaughtUp(t, a, time.Minute)
	e.waitArchived(time.Minute)
	cpA2 := takeCheckpoint(t, a, "on A, before the failover")

	a.Kill(t)
	r1.Exec(t, "STOP SLAVE", "RESET SLAVE ALL", "SET GLOBAL read_only = OFF")
	p.waitLog(t, "FAILOVER", time.Minute)
	e.primary = r1
	load(r1, 100, 130)
	e.waitArchived(time.Minute)
	cpR1 := takeCheckpoint(t, r1, "on R1, the branch R2 never had")

	r1.Exec(t, "SET GLOBAL read_only = ON")
	r2.Exec(t, "RESET SLAVE ALL", "SET GLOBAL read_only = OFF")
	deadline := time.Now().Add(time.Minute)
	for len(logLines(p.out.String(), "FAILOVER")) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("binarc did not switch to R2:\n%s", tail(p.out.String(), 4000))
		}
		time.Sleep(100 * time.Millisecond)
	}
	e.primary = r2
	load(r2, 200, 230)
	e.waitArchived(time.Minute)
	final := tableChecksums(t, r2)

	// The join of timeline 3 is recorded with timeline 1 as its parent.
	tls, j := waitLastJoin(t, e.env, p, 3)
	if j.Parent != tls[0] || j.Previous != tls[1] || j.Version != archive.JoinVersionParent || len(j.Lost) == 0 {
		t.Fatalf("join of %s: %s; want it to rejoin %s", tls[2], j, tls[0])
	}
	t.Logf("%s", j)

	for _, c := range []struct {
		to   string
		want map[string]string
		what string
	}{
		{"latest", final, "R2 now"},
		{cpR1.time.UTC().Format(time.RFC3339), cpR1.sums, cpR1.name},
		{cpR1.gtid, cpR1.sums, cpR1.name + " (by GTID)"},
		{cpA2.gtid, cpA2.sums, cpA2.name},
		{cpA.time.UTC().Format(time.RFC3339), cpA.sums, cpA.name},
	} {
		srv, out := e.restoreDatadir(t, "--to", c.to)
		compareChecksums(t, fmt.Sprintf("restore --to %s (%s)", c.to, c.what), tableChecksums(t, srv), c.want)
		if c.to == "latest" && !strings.Contains(out, "rejoins the history of timeline "+tls[0]) {
			t.Errorf("the plan of restore --to latest does not name the rejoin:\n%s", out)
		}
	}
	if out, code := e.run("verify", "--store", e.store, "--cluster", e.cluster); code != 0 {
		t.Errorf("verify: exit %d\n%s", code, out)
	}
	p.stop(t)
}

// waitLastJoin waits until the archive holds n timelines and stream p has
// recorded the newest one's join; it returns the timelines and that join.
func waitLastJoin(t *testing.T, e *env, p *proc, n int) ([]string, *archive.Join) {
	t.Helper()
	ctx := context.Background()
	cat := e.catalog()
	tls, err := cat.Timelines(ctx)
	if err != nil || len(tls) != n {
		t.Fatalf("timelines %v (%v), want %d", tls, err, n)
	}
	var j *archive.Join
	for deadline := time.Now().Add(30 * time.Second); j == nil; time.Sleep(500 * time.Millisecond) {
		if j, err = archive.ReadJoin(ctx, cat, tls[n-1]); err != nil || (j == nil && time.Now().After(deadline)) {
			t.Fatalf("the stream did not record the join of %s: %v\n%s", tls[n-1], err, tail(p.out.String(), 4000))
		}
	}
	return tls, j
}
