package integration

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/binarc/binarc/archive/objstore"
	"github.com/binarc/binarc/integration/testenv"
)

// restoreDatadir runs binarc restore into a new data directory, starts a
// server on it and returns it with the command's output.
func (e *snapEnv) restoreDatadir(t *testing.T, args ...string) (*testenv.MariaDB, string) {
	t.Helper()
	dir := filepath.Join(reachableTempDir(t), "restored")
	out, code := e.run(append([]string{"restore", "--store", e.store, "--cluster", e.cluster, "--datadir", dir}, args...)...)
	if code != 0 {
		t.Fatalf("binarc restore %v failed (%d):\n%s", args, code, out)
	}
	return testenv.StartMariaDBOn(t, dir, 77), out
}

// TestRestoreFromSnapshot is the whole point-in-time restore: a physical
// snapshot taken from the replica mid-load, then checkpoints after it
// (across a rotation and an archiver kill), each restored by time, by
// position and by GTID from S3 into a fresh data directory: a server
// started on it has every table's checksum equal to the primary's at the
// checkpoint. A target before the snapshot is refused without writing.
func TestRestoreFromSnapshot(t *testing.T) {
	t.Parallel()
	e := newSnapEnv(t)
	ctx := context.Background()
	p := e.start(e.streamArgs()...)
	phase := func(from, to int) {
		if err := writeLoad(ctx, e.primary, loadOptions{From: from, To: to, FlushAt: 40}); err != nil {
			t.Fatal(err)
		}
	}
	phase(0, 60)
	early := takeCheckpoint(t, e.primary, "before the snapshot")
	phase(60, 80)
	e.caughtUpSnapshot(t, "snapshot", physUser)
	phase(80, 100)
	// In the snapshot's own binlog file: the plan starts mid-file there.
	cps := []checkpoint{takeCheckpoint(t, e.primary, "in the snapshot's binlog file")}
	phase(100, 140)
	cps = append(cps, takeCheckpoint(t, e.primary, "after the snapshot and a rotation"))
	p.kill()
	phase(140, 180)
	p = e.start(e.streamArgs()...)
	cps = append(cps, takeCheckpoint(t, e.primary, "after an archiver kill"))
	phase(180, 200)
	e.waitArchived(time.Minute)

	for _, cp := range cps {
		for _, to := range []string{cp.time.UTC().Format(time.RFC3339), cp.position, cp.gtid} {
			srv, out := e.restoreDatadir(t, "--to", to)
			if !strings.Contains(out, "snapshot:") {
				t.Errorf("the restore did not print its plan:\n%s", out)
			}
			compareChecksums(t, "restore --to "+to+" ("+cp.name+")", tableChecksums(t, srv), cp.sums)
		}
	}

	// A second snapshot after every checkpoint: a restore to a position
	// between the two starts from the newer one, its binlog fetched while
	// the snapshot is restored; the archive cannot reach back from there,
	// so the directory is emptied and the older snapshot restores it.
	first := e.newest().ID
	e.caughtUpSnapshot(t, "second snapshot", physUser)
	second := e.newest().ID
	srv, out := e.restoreDatadir(t, "--to", cps[1].position)
	compareChecksums(t, "restore --to "+cps[1].position+" with a newer snapshot after it", tableChecksums(t, srv), cps[1].sums)
	if !strings.Contains(out, `"snapshot":"`+second+`"`) || !strings.Contains(out, "snapshot:  "+first+" ") || second == first {
		t.Errorf("the restore did not try %s first, then restore from %s:\n%s", second, first, out)
	}

	// Before the first snapshot: refused, with the snapshots named, and the
	// data directory never created.
	dir := filepath.Join(t.TempDir(), "never")
	out, code := e.run("restore", "--store", e.store, "--cluster", e.cluster, "--datadir", dir, "--to", early.time.UTC().Format(time.RFC3339))
	if code == 0 || !strings.Contains(out, "no snapshot") || !strings.Contains(out, "after the target") {
		t.Errorf("restore before the first snapshot (%d):\n%s", code, out)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("a refused restore created %s", dir)
	}
	// A dry run prints the plan and writes nothing.
	out, code = e.run("restore", "--store", e.store, "--cluster", e.cluster, "--datadir", dir, "--to", "latest", "--dry-run")
	if code != 0 || !strings.Contains(out, "snapshot:") || !strings.Contains(out, "stop at:") {
		t.Errorf("dry run (%d):\n%s", code, out)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("a dry run created %s", dir)
	}
	out, _ = e.run("ls", "--store", e.store, "--cluster", e.cluster)
	if !strings.Contains(out, "restorable (any second in):") || !strings.Contains(out, "from snapshot "+first) {
		t.Errorf("ls does not show the restorable window:\n%s", out)
	}

	// A corrupt segment, found while the snapshot is being restored: the
	// restore fails naming it, and the directory it had begun is removed.
	tls, err := e.catalog().Describe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	files := tls[len(tls)-1].Files
	live := files[len(files)-1]
	if live.Complete || len(live.Segments) == 0 {
		t.Fatalf("want a live file with segments, have %+v", live)
	}
	seg := live.Segments[len(live.Segments)-1]
	orig := e.get(seg.Key)
	flipped := append([]byte(nil), orig...)
	flipped[len(flipped)/2] ^= 0x40
	e.put(seg.Key, flipped)
	dir = filepath.Join(reachableTempDir(t), "corrupt")
	out, code = e.run("restore", "--store", e.store, "--cluster", e.cluster, "--datadir", dir, "--to", "latest")
	if code == 0 || !strings.Contains(out, seg.Key) {
		t.Errorf("restore with a corrupt segment: exit %d, want it named:\n%s", code, out)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the failed restore left %s", dir)
	}
	e.put(seg.Key, orig)
	p.stop(t)
}

// TestRestoreDetectsDamagedArchive: a flipped byte in a segment, or a
// missing segment, is found and named before anything is replayed.
func TestRestoreDetectsDamagedArchive(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testenv.MariaDBOptions{})
	// The test damages a segment of a complete file: keep them segmented.
	p := e.start(e.streamArgs("--no-compact")...)
	if err := writeLoad(context.Background(), e.primary, loadOptions{From: 0, To: 60, FlushAt: 20}); err != nil {
		t.Fatal(err)
	}
	e.waitArchived(time.Minute)
	p.stop(t)
	cat := e.catalog()
	ctx := context.Background()
	tls, err := cat.Timelines(ctx)
	if err != nil {
		t.Fatal(err)
	}
	segs, err := cat.Segments(ctx, tls[0], "mysql-bin.000002")
	if err != nil || len(segs) == 0 {
		t.Fatalf("segments: %v %v", segs, err)
	}
	victim := segs[len(segs)-1].Key
	data, _, err := objstore.ReadAll(ctx, cat.Store, victim)
	if err != nil {
		t.Fatal(err)
	}
	target := testenv.StartMariaDB(t, testenv.MariaDBOptions{ServerID: 99, NoLogBin: true})
	restore := func() (string, int) {
		return e.runEnv([]string{"BINARC_TARGET_PASSWORD="}, "restore", "--store", e.store, "--cluster", e.cluster,
			"--from", "mysql-bin.000001:4", "--to", "latest", "--target", "mysql://root@"+target.Addr())
	}
	flipped := append([]byte(nil), data...)
	flipped[len(flipped)/2] ^= 0x40
	if _, err := cat.Store.Put(ctx, victim, flipped, objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	out, code := restore()
	if code == 0 || !strings.Contains(out, victim) || !strings.Contains(out, "corrupt") {
		t.Errorf("flipped byte: exit %d, want the segment named as corrupt:\n%s", code, out)
	}
	if err := cat.Store.Delete(ctx, victim); err != nil {
		t.Fatal(err)
	}
	out, code = restore()
	if code == 0 || !strings.Contains(out, "mysql-bin.000002") {
		t.Errorf("missing segment: exit %d:\n%s", code, out)
	}
	if n := target.Query(t, "SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = 'app'")[0][0]; n != "0" {
		t.Errorf("a restore from a damaged archive replayed into the target")
	}
}
