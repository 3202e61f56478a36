package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/archive/objstore"
	"github.com/binarc/binarc/lease"
	"github.com/binarc/binarc/replication"
	"github.com/binarc/binarc/restore"
	"github.com/binarc/binarc/retention"
	"github.com/binarc/binarc/snapshot"
)

// The retention tests age real snapshots with BINARC_TEST_NOW, the clock a
// test build of binarc takes as now (testhooks_on.go): with --keep 30d and
// now at T+30d, the window starts at T.

const pruneKeep = 30 * 24 * time.Hour

func (e *snapEnv) prune(cutoff time.Time, extra ...string) (string, int) {
	e.t.Helper()
	now := "BINARC_TEST_NOW=" + cutoff.Add(pruneKeep).UTC().Format(time.RFC3339Nano)
	return e.runEnv([]string{now}, append([]string{"prune", "--store", e.store, "--cluster", e.cluster, "--keep", "30d"}, extra...)...)
}

// loadPoint is where the primary stood after a phase of the load: a
// transaction boundary, its GTID, and when.
type loadPoint struct {
	at       time.Time
	position string
	gtid     string
}

func (e *snapEnv) point() loadPoint {
	st := e.primary.Query(e.t, "SHOW MASTER STATUS")[0]
	return loadPoint{at: time.Now(), position: st[0] + ":" + st[1], gtid: lastGTID(e.primary.Query(e.t, "SELECT @@gtid_binlog_pos")[0][0])}
}

// planOutcome is what the restore planner chose for a target, or why it
// refused.
type planOutcome struct {
	snapshot, timeline, stop, err string
}

// same tells whether two plans agree: the same snapshot, timeline and stop,
// or both refused (the reasons name the snapshots tried, which differ).
func (a planOutcome) same(b planOutcome) bool {
	if a.err != "" || b.err != "" {
		return a.err != "" && b.err != ""
	}
	return a == b
}

// plan runs the restore planner in-process, as binarc restore --dry-run
// does: choose a snapshot, fetch and check the binlog from its coordinates
// to the target.
func (e *snapEnv) plan(target, work string) planOutcome {
	e.t.Helper()
	tg, err := restore.ParseTarget(target)
	if err != nil {
		e.t.Fatal(err)
	}
	p, err := restore.Restore(context.Background(), restore.RestoreRequest{
		Store: e.objStore(), Layout: e.layout(), Target: tg, DryRun: true, WorkDir: work,
	})
	if err != nil {
		if !errors.Is(err, restore.ErrNoSnapshot) && !errors.Is(err, restore.ErrOutsideWindow) {
			e.t.Fatalf("plan %s: %v", target, err)
		}
		return planOutcome{err: firstLineOf(err.Error())}
	}
	return planOutcome{snapshot: p.Snapshot.ID, timeline: p.Binlog.Timeline, stop: p.Binlog.Stop.String()}
}

func firstLineOf(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

// target is a restore target and the time of the point it names.
type target struct {
	to    string
	at    time.Time
	timed bool // a --to TIME: restorable only up to the last archived transaction's second
}

// TestPruneKeepsTheWindow builds a real archive with two timelines (a
// purge between them) and four snapshots, and prunes it with the window
// starting before all of them, then after each in turn. After each prune:
// every target in the window plans exactly as it did on the whole archive
// (same snapshot, same binlog, same stop), and what remains is exactly what
// the window needs: the base snapshot and those after it, the base's
// timeline from its coordinates file, every later timeline. A dry run and a
// prune with no base change nothing; an incomplete snapshot survives while
// the snapshot lease is held. The stream then resumes the pruned timeline.
func TestPruneKeepsTheWindow(t *testing.T) {
	t.Parallel()
	e := newSnapEnv(t)
	ctx := context.Background()
	p := e.start(e.streamArgs()...)
	var points []loadPoint
	next := 3 // phases end off the FLUSH iterations, so every point is a transaction boundary
	load := func(n int) {
		for end := next + n; next < end; {
			to := min(next+5, end)
			if err := writeLoad(ctx, e.primary, loadOptions{From: next, To: to, FlushAt: 10}); err != nil {
				t.Fatal(err)
			}
			next = to
			points = append(points, e.point())
			time.Sleep(300 * time.Millisecond) // spread the points over time
		}
	}
	snap := func() *snapshot.Manifest {
		time.Sleep(1100 * time.Millisecond) // ids are per second
		e.caughtUpSnapshot(t, "snapshot", physUser)
		return e.newest()
	}
	load(20)
	s1 := snap()
	load(20)
	s2 := snap()
	load(15)
	e.waitArchived(time.Minute)
	p.stop(t)
	// Written and purged while nobody archives: the next stream starts
	// timeline 2.
	if err := writeLoad(ctx, e.primary, loadOptions{From: 500, To: 520, FlushAt: 10}); err != nil {
		t.Fatal(err)
	}
	e.replica.WaitCaughtUp(t, e.primary, time.Minute)
	e.primary.Exec(t, "PURGE BINARY LOGS TO '"+e.primary.Query(t, "SHOW MASTER STATUS")[0][0]+"'")
	p = e.start(e.streamArgs()...)
	gapEnd := len(points)
	load(20)
	s3 := snap()
	load(20)
	s4 := snap()
	load(30)
	e.waitArchived(time.Minute)
	p.stop(t)
	last := time.Now()

	cat := e.catalog()
	orig, err := cat.Describe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(orig) != 2 {
		t.Fatalf("%d timelines; want 2", len(orig))
	}
	snaps := []*snapshot.Manifest{s1, s2, s3, s4}
	for i, s := range snaps {
		tl := orig[min(i/2, 1)]
		if tl.Files[0].File == s.Coordinates.File {
			t.Fatalf("snapshot %s is in the first file of its timeline: nothing before it to prune", s.ID)
		}
	}
	// A snapshot that failed long ago: data, no manifest.
	failed := archive.FormatSnapshotID(s1.Started.Add(-2*time.Hour), "physical")
	if _, err := e.objStore().Put(ctx, e.layout().SnapshotDataKey(failed, archive.SnapshotDataPhysical), []byte("half"), objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}

	// Targets: every point of the load by position and by GTID, and every
	// second from before the first snapshot to after the last event.
	var targets []target
	for i, pt := range points {
		if i == gapEnd-1 || i == gapEnd {
			continue // around the purge: positions in purged files
		}
		targets = append(targets, target{to: pt.position, at: pt.at}, target{to: pt.gtid, at: pt.at})
	}
	for at := s1.Started.Truncate(time.Second).Add(-2 * time.Second); at.Before(last.Add(2 * time.Second)); at = at.Add(time.Second) {
		targets = append(targets, target{to: at.UTC().Format(time.RFC3339), at: at, timed: true})
	}
	targets = append(targets, target{to: "latest", at: last})
	work := t.TempDir()
	before := map[string]planOutcome{}
	for _, tg := range targets {
		before[tg.to] = e.plan(tg.to, work)
	}

	unchanged := func(what string, run func()) {
		t.Helper()
		objs, _ := e.bucketState()
		run()
		if after, _ := e.bucketState(); !maps.Equal(objs, after) {
			t.Fatalf("%s changed the bucket: %d objects before, %d after", what, len(objs), len(after))
		}
	}
	// The window starts before every snapshot: nothing goes (but the
	// prune lease, taken and released).
	objs, _ := e.bucketState()
	out, code := e.prune(s1.Started.Add(-time.Second))
	if code != 0 || !strings.Contains(out, "nothing to delete: no complete snapshot was taken at or before") {
		t.Fatalf("prune with no base (%d):\n%s", code, out)
	}
	after, _ := e.bucketState()
	delete(after, "archive/"+e.layout().PruneLeaseKey())
	if !maps.Equal(objs, after) {
		t.Fatalf("a prune with no base deleted something: %d objects before, %d after", len(objs), len(after))
	}
	// A dry run lists what would go and why, and changes nothing.
	unchanged("a dry run", func() {
		out, code := e.prune(s4.Started.Add(500*time.Millisecond), "--dry-run")
		for _, want := range []string{"base snapshot: " + s4.ID, "delete  timeline " + orig[0].Name + ", whole", "delete  " + s1.ID + ": older than the base",
			"keep    " + s4.ID + ": base", "delete  " + orig[1].Name + "/" + orig[1].Files[0].File, "dry run: would delete 4 snapshots, 1 timeline and "} {
			if code != 0 || !strings.Contains(out, want) {
				t.Fatalf("dry run (%d) lacks %q:\n%s", code, want, out)
			}
		}
	})

	steps := []struct {
		base   *snapshot.Manifest
		cutoff time.Time
		// holdLease: a snapshot job holds its lease, so the failed
		// snapshot may be its work: kept.
		holdLease bool
	}{
		{s2, s2.Started.Add(500 * time.Millisecond), true},
		{s3, s3.Started.Add(500 * time.Millisecond), false},
		{s4, s4.Started.Add(500 * time.Millisecond), false},
	}
	for _, st := range steps {
		var held *lease.Lease
		if st.holdLease {
			if held, err = lease.AcquireAt(ctx, e.objStore(), e.layout().SnapshotLeaseKey(), e.cluster, "binarc snapshot", time.Minute); err != nil {
				t.Fatal(err)
			}
		}
		out, code := e.prune(st.cutoff)
		if code != 0 || !strings.Contains(out, "base snapshot: "+st.base.ID) {
			t.Fatalf("prune with base %s (%d):\n%s", st.base.ID, code, out)
		}
		t.Logf("prune, window from %s:\n%s", st.cutoff.Format(time.RFC3339Nano), out)
		if held != nil {
			if !strings.Contains(out, "holds the snapshot lease") {
				t.Errorf("the failed snapshot's reason does not name the lease:\n%s", out)
			}
			if err := held.Release(ctx); err != nil {
				t.Fatal(err)
			}
		}
		e.checkRetained(orig, snaps, st.base, map[bool][]string{true: {failed}}[st.holdLease])

		// Every target in the window plans as it did on the whole archive.
		inWindow, restorable := 0, 0
		work := t.TempDir()
		for _, tg := range targets {
			if tg.at.Before(st.cutoff) {
				continue
			}
			inWindow++
			got := e.plan(tg.to, work)
			if !got.same(before[tg.to]) {
				t.Errorf("window from %s (base %s): --to %s planned %+v before the prune, %+v after", st.cutoff.Format(time.RFC3339Nano), st.base.ID, tg.to, before[tg.to], got)
			}
			if got.err == "" {
				restorable++
			}
		}
		t.Logf("base %s: %d targets in the window, %d restorable, all as before the prune", st.base.ID, inWindow, restorable)
		if restorable < 10 {
			t.Errorf("base %s: only %d restorable targets in the window", st.base.ID, restorable)
		}
	}
	// The last window starts in timeline 2 after s4: all of it restores,
	// to the second of the last transaction (a time target needs a
	// transaction at or after it).
	lastTx := points[len(points)-1].at.Truncate(time.Second).Add(-time.Second)
	for _, tg := range targets {
		if !tg.at.Before(steps[2].cutoff) && (!tg.timed || !tg.at.After(lastTx)) && before[tg.to].err != "" {
			t.Errorf("--to %s, in the window from s4, is not restorable: %s", tg.to, before[tg.to].err)
		}
	}

	// The stream resumes the pruned timeline where it was: no break.
	p = e.start(e.streamArgs()...)
	load(10)
	first := e.waitArchivedTail(time.Minute)
	p.stop(t)
	if first != s4.Coordinates.File {
		t.Errorf("archive starts at %s; want %s, the base's file", first, s4.Coordinates.File)
	}
	e.compareTailWithPrimary()
	if n := len(logLines(p.out.String(), "ARCHIVE BREAK")); n != 0 {
		t.Errorf("the stream broke its timeline after a prune")
	}
	out, code = e.run("ls", "--store", e.store, "--cluster", e.cluster)
	if code != 0 || !strings.Contains(out, "from snapshot "+s4.ID) {
		t.Errorf("ls after pruning (%d):\n%s", code, out)
	}
}

// checkRetained checks that the archive holds exactly what a window with
// this base needs: the snapshots from the base on (and the incomplete ones
// named), the base's timeline from its coordinates file, the later
// timelines whole, and no other object.
func (e *snapEnv) checkRetained(orig []*archive.TimelineState, snaps []*snapshot.Manifest, base *snapshot.Manifest, incomplete []string) {
	t := e.t
	t.Helper()
	ctx := context.Background()
	l := e.layout()
	wantFiles := map[string][]string{}
	baseTL := -1
	for i, tl := range orig {
		for _, f := range tl.Files {
			if f.File == base.Coordinates.File {
				baseTL = i
			}
		}
	}
	if baseTL < 0 {
		t.Fatalf("base %s at %s is in no timeline", base.ID, base.Coordinates.File)
	}
	allowed := map[string]bool{l.LayoutKey(): true, l.LeaseKey(): true, l.SnapshotLeaseKey(): true, l.PruneLeaseKey(): true}
	var prefixes []string
	for _, tl := range orig[baseTL:] {
		allowed[l.TimelineKey(tl.Name)], allowed[l.JoinKey(tl.Name)] = true, true
		for _, f := range tl.Files {
			if tl.Name == orig[baseTL].Name && replication.CompareBinlogNames(f.File, base.Coordinates.File) < 0 {
				continue
			}
			wantFiles[tl.Name] = append(wantFiles[tl.Name], f.File)
			allowed[l.IndexKey(tl.Name, f.File)], allowed[l.CompactedKey(tl.Name, f.File)] = true, true
			prefixes = append(prefixes, l.FilePrefix(tl.Name, f.File))
		}
	}
	wantSnaps := slices.Clone(incomplete)
	for _, s := range snaps {
		if !s.Started.Before(base.Started) {
			wantSnaps = append(wantSnaps, s.ID)
		}
	}
	for _, id := range wantSnaps {
		prefixes = append(prefixes, l.SnapshotPrefix(id))
	}
	slices.Sort(wantSnaps)

	tls, err := e.catalog().Describe(ctx)
	if err != nil {
		t.Fatalf("the pruned archive does not read: %v", err)
	}
	gotFiles := map[string][]string{}
	for _, tl := range tls {
		for i, f := range tl.Files {
			gotFiles[tl.Name] = append(gotFiles[tl.Name], f.File)
			// Only the last file of a timeline may be unindexed (the live
			// one, or where an older timeline broke off).
			if f.Gap != nil || (!f.Complete && i != len(tl.Files)-1) {
				t.Errorf("%s/%s: complete %v, gap %v", tl.Name, f.File, f.Complete, f.Gap)
			}
		}
	}
	if !maps.EqualFunc(gotFiles, wantFiles, slices.Equal) {
		t.Errorf("base %s: the archive holds\n%v\nwant\n%v", base.ID, gotFiles, wantFiles)
	}
	var gotSnaps []string
	for _, s := range e.snapshots() {
		gotSnaps = append(gotSnaps, s.ID)
	}
	if !slices.Equal(gotSnaps, wantSnaps) {
		t.Errorf("base %s: snapshots %v; want %v", base.ID, gotSnaps, wantSnaps)
	}
	keys, err := retention.ListAll(ctx, e.objStore(), e.cluster+"/")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if !allowed[k] && !slices.ContainsFunc(prefixes, func(p string) bool { return strings.HasPrefix(k, p) }) {
			t.Errorf("base %s: %s is left, and no kept file or snapshot owns it", base.ID, k)
		}
	}
}

// archivedFiles returns the newest timeline's files, in order.
func (e *env) archivedFiles() (string, []*archive.FileState, error) {
	tls, err := e.catalog().Describe(context.Background())
	if err != nil {
		return "", nil, err
	}
	if len(tls) == 0 {
		return "", nil, errors.New("no timeline")
	}
	return tls[len(tls)-1].Name, tls[len(tls)-1].Files, nil
}

// waitArchivedTail is waitArchived for a pruned archive: the newest
// timeline holds every file the primary has from its first kept file on,
// with no file missing in between, the last up to the primary's size. It
// returns the first kept file.
func (e *env) waitArchivedTail(timeout time.Duration) string {
	e.t.Helper()
	waitSettled(e.t, e.primary.BinlogFiles(e.t))
	deadline := time.Now().Add(timeout)
	var why string
	for time.Now().Before(deadline) {
		var first string
		first, why = e.archivedTailState()
		if why == "" {
			return first
		}
		time.Sleep(200 * time.Millisecond)
	}
	e.t.Fatalf("archive did not catch up with the primary within %s: %s", timeout, why)
	return ""
}

func (e *env) archivedTailState() (first, why string) {
	_, files, err := e.archivedFiles()
	if err != nil {
		return "", err.Error()
	}
	if len(files) == 0 {
		return "", "no files"
	}
	first = files[0].File
	rows := e.primary.Query(e.t, "SHOW BINARY LOGS")
	i := 0
	for _, r := range rows {
		if replication.CompareBinlogNames(r[0], first) < 0 {
			continue
		}
		if i >= len(files) {
			return first, "not archived yet: " + r[0]
		}
		f := files[i]
		if f.File != r[0] {
			return first, fmt.Sprintf("the archive has %s where the primary has %s: a file is missing", f.File, r[0])
		}
		var size uint64
		fmt.Sscan(r[1], &size)
		if f.Size != size || f.Gap != nil {
			return first, fmt.Sprintf("%s: archived %d of %d bytes (gap: %v)", r[0], f.Size, size, f.Gap)
		}
		if r[0] != rows[len(rows)-1][0] && !f.Complete {
			return first, r[0] + ": not yet indexed as complete"
		}
		i++
	}
	if i != len(files) {
		return first, fmt.Sprintf("the archive has %d files the primary does not", len(files)-i)
	}
	return first, ""
}

// compareTailWithPrimary fetches the newest timeline's files with binarc
// binlog fetch and compares each with the primary's, byte for byte.
func (e *env) compareTailWithPrimary() int {
	e.t.Helper()
	dir := e.t.TempDir()
	out, code := e.run("binlog", "fetch", "--store", e.store, "--cluster", e.cluster, "--dir", dir)
	if code != 0 {
		e.t.Fatalf("binlog fetch failed (%d):\n%s", code, out)
	}
	primaryFiles := e.primary.BinlogFiles(e.t)
	waitClosed(e.t, primaryFiles[:len(primaryFiles)-1])
	fetched, _ := os.ReadDir(dir)
	if len(fetched) == 0 {
		e.t.Fatal("nothing fetched")
	}
	for _, fe := range fetched {
		got, err := os.ReadFile(filepath.Join(dir, fe.Name()))
		if err != nil {
			e.t.Fatal(err)
		}
		want, err := os.ReadFile(filepath.Join(filepath.Dir(primaryFiles[0]), fe.Name()))
		if err != nil {
			e.t.Fatalf("archived %s is not on the primary: %v", fe.Name(), err)
		}
		if !bytes.Equal(got, want) {
			e.t.Fatalf("%s: archived copy differs from the primary's: %s", fe.Name(), firstDiff(got, want))
		}
	}
	return len(fetched)
}
