package integration

import (
	"context"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/binarc/binarc/replication"
	"github.com/binarc/binarc/snapshot"
)

// startRotatingLoad writes to the primary, rotating often, until stopped.
func (e *env) startRotatingLoad(from int) *backgroundLoad {
	return e.startLoad("load", loadOptions{From: from, To: from + 1_000_000, FlushAt: 20})
}

var prunedRE = regexp.MustCompile(`deleted (\d+) snapshots?, (\d+) timelines? and (\d+) binlog files?`)

// checkContiguous checks, while the stream runs, that the archive is one
// timeline of consecutive binlog files starting no later than upTo. It
// retries a read that races the stream (a file compacted under it).
func (e *env) checkContiguous(upTo string) {
	e.t.Helper()
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		tls, derr := e.catalog().Timelines(context.Background())
		if derr != nil || len(tls) != 1 {
			e.t.Fatalf("timelines %v (%v); want exactly one: a prune must not break the stream", tls, derr)
		}
		var files []string
		tl, fs, ferr := e.archivedFiles()
		if ferr != nil {
			err = ferr
			time.Sleep(100 * time.Millisecond)
			continue
		}
		for _, f := range fs {
			files = append(files, f.File)
		}
		_, prev, _ := replication.SplitBinlogName(files[0])
		for _, f := range files[1:] {
			_, seq, _ := replication.SplitBinlogName(f)
			if seq != prev+1 {
				e.t.Fatalf("timeline %s: %s follows file number %d: a gap (files %v)", tl, f, prev, files)
			}
			prev = seq
		}
		if replication.CompareBinlogNames(files[0], upTo) > 0 {
			e.t.Fatalf("the archive starts at %s, after %s, the newest snapshot's file", files[0], upTo)
		}
		return
	}
	e.t.Fatalf("the archive does not read: %v", err)
}

// TestPruneRacingStream prunes again and again while binarc stream
// archives a primary that keeps writing and rotating, with a new snapshot
// before each round so that every round has something to delete right
// behind the stream. No prune opens a gap or breaks the timeline; once the
// load stops, the archive is, byte for byte, the primary's binlog from the
// newest snapshot's file on; and after a kill -9 the stream resumes the
// pruned timeline.
func TestPruneRacingStream(t *testing.T) {
	t.Parallel()
	e := newSnapEnv(t)
	p := e.start(e.streamArgs()...)
	load := e.startRotatingLoad(0)
	deleted := 0
	var newest *snapshot.Manifest
	for round := 0; round < 4; round++ {
		time.Sleep(1100 * time.Millisecond) // snapshot ids are per second
		if out, code := e.run(e.snapshotArgs(physUser)...); code != 0 {
			t.Fatalf("snapshot failed (%d):\n%s", code, out)
		}
		newest = e.newest()
		for i := 0; i < 3; i++ {
			// The window starts now: the base is the newest snapshot (or,
			// if the stream has not archived its coordinates yet, the one
			// before).
			out, code := e.prune(time.Now())
			if code != 0 {
				t.Fatalf("round %d: prune beside the stream exited %d:\n%s", round, code, out)
			}
			if m := prunedRE.FindStringSubmatch(out); m != nil {
				n, _ := strconv.Atoi(m[3])
				deleted += n
			}
			e.checkContiguous(newest.Coordinates.File)
		}
	}
	load.stop(t)
	if deleted < 5 {
		t.Fatalf("the prunes deleted only %d binlog files while the stream ran", deleted)
	}
	t.Logf("%d binlog files pruned beside the running stream", deleted)
	e.waitArchivedTail(2 * time.Minute)
	if out, code := e.prune(time.Now()); code != 0 {
		t.Fatalf("final prune (%d):\n%s", code, out)
	}
	if first := e.waitArchivedTail(time.Minute); first != newest.Coordinates.File {
		t.Errorf("the archive starts at %s; want %s, the newest snapshot's file", first, newest.Coordinates.File)
	}
	// Stopped first: a fetch beside the stream's compactor is another race.
	p.stop(t)
	n := e.compareTailWithPrimary()
	t.Logf("%d archived files equal the primary's", n)
	if got := e.plan("latest", t.TempDir()); got.err != "" || got.snapshot != newest.ID {
		t.Errorf("restore to latest after the prunes: %+v; want it from %s", got, newest.ID)
	}

	// The stream resumes the pruned timeline, also after a kill -9.
	q := e.start(e.streamArgs()...)
	if err := writeLoad(context.Background(), e.primary, loadOptions{From: 2_000_000, To: 2_000_030, FlushAt: 8}); err != nil {
		t.Fatal(err)
	}
	q.kill()
	if err := writeLoad(context.Background(), e.primary, loadOptions{From: 2_000_030, To: 2_000_060, FlushAt: 8}); err != nil {
		t.Fatal(err)
	}
	r := e.start(e.streamArgs()...)
	e.waitArchivedTail(time.Minute)
	r.stop(t)
	e.compareTailWithPrimary()
	for _, proc := range []*proc{p, q, r} {
		if n := len(logLines(proc.out.String(), "ARCHIVE BREAK")); n != 0 {
			t.Errorf("the stream broke its timeline beside prune:\n%s", proc.out.String())
		}
	}
	if tls, _ := e.catalog().Timelines(context.Background()); len(tls) != 1 {
		t.Errorf("timelines %v; want one", tls)
	}
}

// TestKeepOnStreamAndSnapshot: binarc stream --keep prunes every
// --prune-interval under its lease, and binarc snapshot --keep prunes after
// each snapshot, one-shot and scheduled. With the window starting after
// every snapshot taken here, what is left in the end is the newest
// snapshot and the binlog from its file on.
func TestKeepOnStreamAndSnapshot(t *testing.T) {
	t.Parallel()
	e := newSnapEnv(t)
	// A keep of 1h at now+2h: the window starts an hour from now.
	future := time.Now().Add(2 * time.Hour).UTC().Format(time.RFC3339)
	keep := []string{"--keep", "1h"}
	now := []string{"BINARC_TEST_NOW=" + future}
	p := e.startEnv(now, e.streamArgs(append(keep, "--prune-interval", "1s")...)...)
	load := e.startRotatingLoad(0)
	for i := 0; i < 2; i++ {
		time.Sleep(1100 * time.Millisecond)
		out, code := e.runEnv(now, e.snapshotArgs(physUser, keep...)...)
		if code != 0 {
			t.Fatalf("snapshot --keep failed (%d):\n%s", code, out)
		}
		if len(logLines(out, "pruned:"))+len(logLines(out, "prune skipped: another prune")) == 0 {
			t.Errorf("snapshot --keep did not prune after the snapshot:\n%s", out)
		}
	}
	sched := e.startEnv(now, e.snapshotArgs(physUser, append(keep, "--schedule", "@every 2s")...)...)
	deadline := time.Now().Add(time.Minute)
	for len(logLines(sched.out.String(), "pruned:"))+len(logLines(sched.out.String(), "prune skipped: another prune")) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("snapshot --schedule --keep did not prune within a minute:\n%s", sched.out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	sched.stop(t)
	// A snapshot with no --keep of its own: the stream's prune, alone,
	// brings the archive down to it.
	time.Sleep(1100 * time.Millisecond)
	if out, code := e.run(e.snapshotArgs(physUser)...); code != 0 {
		t.Fatalf("snapshot failed (%d):\n%s", code, out)
	}
	load.stop(t)
	newest := e.newest()
	deadline = time.Now().Add(time.Minute)
	for {
		complete := 0
		for _, s := range e.snapshots() {
			if s.Complete {
				complete++
			}
		}
		first, why := e.archivedTailState()
		if complete == 1 && first == newest.Coordinates.File && why == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after a minute: %d complete snapshots, archive from %s (%s); want 1 and %s", complete, first, why, newest.Coordinates.File)
		}
		time.Sleep(200 * time.Millisecond)
	}
	var files int
	for _, l := range logLines(p.out.String(), "pruned:") {
		files += int(l["files_deleted"].(float64))
	}
	if files == 0 {
		t.Errorf("the stream's prunes deleted no binlog file:\n%s", p.out.String())
	}
	t.Logf("the stream's prunes deleted %d binlog files", files)
	// The primary writes a binlog checkpoint by itself after the last
	// rotation: let it, and the stream archive it, before comparing.
	e.waitArchivedTail(time.Minute)
	p.stop(t)
	e.compareTailWithPrimary()
	if n := len(logLines(p.out.String(), "ARCHIVE BREAK")); n != 0 {
		t.Errorf("the stream broke its timeline")
	}
	if lines := logLines(p.out.String(), "prune failed"); len(lines) > 0 {
		t.Errorf("a prune in the stream failed: %v", lines)
	}
}
