package retention

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/lease"
	"github.com/binarc/binarc/replication"
	"github.com/binarc/binarc/snapshot"
)

func TestParseKeep(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"30d": 30 * 24 * time.Hour, "36h": 36 * time.Hour, "2w": 14 * 24 * time.Hour,
		"1w3d": 10 * 24 * time.Hour, "1d12h": 36 * time.Hour, " 90m ": 90 * time.Minute, "1h": time.Hour,
	} {
		got, err := ParseKeep(in)
		if err != nil || got != want {
			t.Errorf("ParseKeep(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "30", "d", "-1d", "30x", "1.5d", "59m", "3600s0", "99999999999w", "1d-2h", "30 d"} {
		if got, err := ParseKeep(in); err == nil {
			t.Errorf("ParseKeep(%q) = %v; want an error", in, got)
		} else if !strings.Contains(err.Error(), "30d") {
			t.Errorf("ParseKeep(%q): %v; the error should show an example", in, err)
		}
	}
	for d, want := range map[time.Duration]string{30 * 24 * time.Hour: "30d", 36 * time.Hour: "1d12h", 12 * time.Hour: "12h", 90 * time.Minute: "1h30m"} {
		if got := FormatKeep(d); got != want {
			t.Errorf("FormatKeep(%v) = %q; want %q", d, got, want)
		}
	}
}

var pt0 = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

// testTimeline is a timeline archived from serverID whose files are all
// complete and 1000 bytes long.
func testTimeline(name string, serverID uint32, files ...string) *archive.TimelineState {
	ts := &archive.TimelineState{Name: name, Info: &archive.TimelineInfo{Timeline: name, SourceServerID: serverID}}
	for _, f := range files {
		ts.Files = append(ts.Files, &archive.FileState{Timeline: name, File: f, Size: 1000, Complete: true})
	}
	return ts
}

func binlogNames(from, to int) []string {
	var out []string
	for i := from; i <= to; i++ {
		out = append(out, fmt.Sprintf("mysql-bin.%06d", i))
	}
	return out
}

// testSnap is a complete snapshot of a replica of server 1, taken day days
// after pt0, at file:500.
func testSnap(day int, file string) snapshot.Entry {
	at := pt0.Add(time.Duration(day) * 24 * time.Hour)
	id := archive.FormatSnapshotID(at, "physical")
	return snapshot.Entry{ID: id, Time: at, Method: "physical", Complete: true, Manifest: &snapshot.Manifest{
		ID: id, Method: snapshot.Physical, Started: at, SourceServerID: 2, MasterServerID: 1,
		Coordinates: snapshot.Coordinates{File: file, Pos: 500},
	}}
}

func incomplete(day float64) snapshot.Entry {
	at := pt0.Add(time.Duration(day * float64(24*time.Hour)))
	return snapshot.Entry{ID: archive.FormatSnapshotID(at, "physical"), Time: at, Method: "physical"}
}

// outcome summarises a plan: deleted snapshot ids, deleted files as
// "timeline/file", and timelines deleted whole.
func outcome(p *PrunePlan) (snaps, files, whole []string) {
	for _, d := range p.Snapshots {
		if d.Delete {
			snaps = append(snaps, d.Entry.ID)
		}
	}
	for _, tl := range p.Timelines {
		if tl.Whole {
			whole = append(whole, tl.Name)
		}
		for _, f := range tl.Files {
			if f.Delete {
				files = append(files, tl.Name+"/"+f.File)
			}
		}
	}
	return snaps, files, whole
}

func day(n int) time.Time { return pt0.Add(time.Duration(n) * 24 * time.Hour) }

// The catalog of the examples: timeline 1 (files 1-5) from server 1, a
// break (binlogs purged), timeline 2 (files 8-12), snapshots on days 1, 3
// (timeline 1), 10 and 20 (timeline 2).
func exampleState() PruneState {
	return PruneState{
		Timelines: []*archive.TimelineState{
			testTimeline("000001-a", 1, binlogNames(1, 5)...),
			testTimeline("000002-b", 1, binlogNames(8, 12)...),
		},
		Snapshots: []snapshot.Entry{
			testSnap(1, "mysql-bin.000002"), testSnap(3, "mysql-bin.000004"),
			testSnap(10, "mysql-bin.000009"), testSnap(20, "mysql-bin.000011"),
		},
	}
}

func TestPlanPruneBaseInLaterTimeline(t *testing.T) {
	st := exampleState()
	// Window starts on day 15: base is day 10's snapshot, in timeline 2.
	p := PlanPrune(st, 30*24*time.Hour, day(45))
	if p.KeepAll != "" || p.Base == nil || p.Base.ID != st.Snapshots[2].ID || p.BaseTimeline != "000002-b" {
		t.Fatalf("base %+v (keep all: %q)", p.Base, p.KeepAll)
	}
	snaps, files, whole := outcome(p)
	if !slices.Equal(snaps, []string{st.Snapshots[0].ID, st.Snapshots[1].ID}) {
		t.Errorf("snapshots deleted %v; want days 1 and 3", snaps)
	}
	if !slices.Equal(whole, []string{"000001-a"}) {
		t.Errorf("whole timelines deleted %v; want timeline 1", whole)
	}
	want := []string{}
	for _, f := range binlogNames(1, 5) {
		want = append(want, "000001-a/"+f)
	}
	want = append(want, "000002-b/mysql-bin.000008")
	if !slices.Equal(files, want) {
		t.Errorf("files deleted %v; want %v", files, want)
	}
	if p.KeepFrom != (replication.Position{File: "mysql-bin.000009", Offset: 500}) || p.KeepFromTL != "000002-b" {
		t.Errorf("keep from %s in %s", p.KeepFrom, p.KeepFromTL)
	}
	for _, d := range p.Snapshots[2:] {
		if d.Delete || d.Why == "" {
			t.Errorf("%s: %+v", d.Entry.ID, d)
		}
	}
	if !strings.Contains(p.Snapshots[2].Why, "base") || !strings.Contains(p.Snapshots[3].Why, "in the window") {
		t.Errorf("reasons: %q, %q", p.Snapshots[2].Why, p.Snapshots[3].Why)
	}
}

func TestPlanPruneBaseInOlderTimeline(t *testing.T) {
	st := exampleState()
	// Window starts on day 5: base is day 3's, in timeline 1; all of
	// timeline 2 stays.
	p := PlanPrune(st, 30*24*time.Hour, day(35))
	snaps, files, whole := outcome(p)
	if p.Base.ID != st.Snapshots[1].ID || !slices.Equal(snaps, []string{st.Snapshots[0].ID}) || len(whole) != 0 {
		t.Fatalf("base %s, deleted snapshots %v, whole %v", p.Base.ID, snaps, whole)
	}
	if !slices.Equal(files, []string{"000001-a/mysql-bin.000001", "000001-a/mysql-bin.000002", "000001-a/mysql-bin.000003"}) {
		t.Errorf("files deleted %v", files)
	}
	// A base at the exact window start still counts.
	p = PlanPrune(st, 30*24*time.Hour, day(33))
	if p.Base == nil || p.Base.ID != st.Snapshots[1].ID {
		t.Errorf("snapshot taken exactly at the window start: base %v", p.Base)
	}
}

func TestPlanPruneNoBase(t *testing.T) {
	st := exampleState()
	check := func(name string, p *PrunePlan, reason string) {
		t.Helper()
		snaps, files, whole := outcome(p)
		if p.Base != nil || !strings.Contains(p.KeepAll, reason) || len(snaps)+len(files)+len(whole) > 0 {
			t.Errorf("%s: base %v, keep all %q, deleted %v %v %v", name, p.Base, p.KeepAll, snaps, files, whole)
		}
	}
	// The window starts before the first snapshot.
	check("window before every snapshot", PlanPrune(st, 30*24*time.Hour, day(30)), "no complete snapshot was taken at or before")
	check("no snapshots", PlanPrune(PruneState{Timelines: st.Timelines, Snapshots: []snapshot.Entry{incomplete(0)}}, time.Hour, day(40)), "no complete snapshot")
	// The only old snapshot's binlog is not archived.
	st.Snapshots = []snapshot.Entry{testSnap(1, "mysql-bin.000077"), testSnap(20, "mysql-bin.000011")}
	check("coordinates not archived", PlanPrune(st, 30*24*time.Hour, day(45)), "mysql-bin.000077")
	// Coordinates past what is archived of the file do not count either.
	st.Snapshots = []snapshot.Entry{testSnap(1, "mysql-bin.000002")}
	st.Snapshots[0].Manifest.Coordinates.Pos = 1001
	check("coordinates past the archived end", PlanPrune(st, 30*24*time.Hour, day(45)), "not in the archive")
}

// A newer snapshot whose coordinates are not archived is passed over; the
// base is then an older one, and more is kept, never less.
func TestPlanPruneBasePassesOverUnarchivedSnapshot(t *testing.T) {
	st := exampleState()
	st.Snapshots[2].Manifest.Coordinates.File = "mysql-bin.000006" // in the purged range
	p := PlanPrune(st, 30*24*time.Hour, day(45))
	if p.Base.ID != st.Snapshots[1].ID {
		t.Fatalf("base %s; want day 3's", p.Base.ID)
	}
	snaps, _, whole := outcome(p)
	if !slices.Equal(snaps, []string{st.Snapshots[0].ID}) || len(whole) != 0 {
		t.Errorf("deleted %v, whole %v", snaps, whole)
	}
}

func TestPlanPruneIncompleteSnapshots(t *testing.T) {
	st := exampleState()
	old, dayOld, recent := incomplete(2), incomplete(43.5), incomplete(44.9)
	st.Snapshots = append(st.Snapshots, old, dayOld, recent)
	now := day(45)
	p := PlanPrune(st, 30*24*time.Hour, now)
	snaps, _, _ := outcome(p)
	for _, e := range []snapshot.Entry{old, dayOld} {
		if !slices.Contains(snaps, e.ID) {
			t.Errorf("incomplete %s not deleted: %v", e.ID, snaps)
		}
	}
	if slices.Contains(snaps, recent.ID) {
		t.Errorf("a recent incomplete snapshot, maybe running, was deleted")
	}
	// A snapshot job holds the lease: no incomplete snapshot goes.
	st.SnapshotJob = &lease.Info{Command: "binarc snapshot", Host: "h", PID: 7, Expires: now.Add(time.Minute)}
	p = PlanPrune(st, 30*24*time.Hour, now)
	snaps, _, _ = outcome(p)
	for _, e := range []snapshot.Entry{old, dayOld, recent} {
		if slices.Contains(snaps, e.ID) {
			t.Errorf("incomplete %s deleted while a snapshot job holds the lease", e.ID)
		}
	}
	for _, d := range p.Snapshots {
		if !d.Entry.Complete && !strings.Contains(d.Why, "holds the snapshot lease") {
			t.Errorf("%s: %q", d.Entry.ID, d.Why)
		}
	}
}

// A later snapshot of a lagging replica stands before the base on the
// binlog: what it needs is kept too.
func TestPlanPruneLaggingSnapshot(t *testing.T) {
	st := exampleState()
	st.Snapshots[3].Manifest.Coordinates.File = "mysql-bin.000004" // day 20, but in timeline 1
	p := PlanPrune(st, 30*24*time.Hour, day(45))
	if p.Base.ID != st.Snapshots[2].ID || p.KeepFromTL != "000001-a" || p.KeepFrom.File != "mysql-bin.000004" || !strings.Contains(p.KeepFromWhy, st.Snapshots[3].ID) {
		t.Fatalf("base %s, keep from %s/%s (%s)", p.Base.ID, p.KeepFromTL, p.KeepFrom.File, p.KeepFromWhy)
	}
	_, files, whole := outcome(p)
	if len(whole) != 0 || !slices.Equal(files, []string{"000001-a/mysql-bin.000001", "000001-a/mysql-bin.000002", "000001-a/mysql-bin.000003"}) {
		t.Errorf("deleted files %v, whole %v", files, whole)
	}
}

// A kept snapshot whose manifest does not read: what it needs is unknown,
// so no binlog goes; older snapshots still do.
func TestPlanPruneUnreadableManifest(t *testing.T) {
	st := exampleState()
	bad := snapshot.Entry{ID: archive.FormatSnapshotID(day(12), "physical"), Time: day(12), Method: "physical", Problem: "manifest version 9: upgrade binarc"}
	st.Snapshots = append(st.Snapshots, bad)
	p := PlanPrune(st, 30*24*time.Hour, day(45))
	snaps, files, whole := outcome(p)
	if !strings.Contains(p.KeepBinlog, bad.ID) || len(files)+len(whole) != 0 {
		t.Errorf("keep binlog %q; deleted files %v, whole %v", p.KeepBinlog, files, whole)
	}
	if !slices.Equal(snaps, []string{st.Snapshots[0].ID, st.Snapshots[1].ID}) {
		t.Errorf("deleted snapshots %v", snaps)
	}
	// Older than the base, it goes like any other.
	bad.Time = day(2)
	st.Snapshots[4] = bad
	p = PlanPrune(st, 30*24*time.Hour, day(45))
	snaps, files, _ = outcome(p)
	if p.KeepBinlog != "" || !slices.Contains(snaps, bad.ID) || len(files) == 0 {
		t.Errorf("old unreadable snapshot: keep binlog %q, deleted %v %v", p.KeepBinlog, snaps, files)
	}
}

// In the newest timeline, which the archiver may be writing, only indexed
// files go: deleting stops at the first file without an index.
func TestPlanPruneNewestTimelineStopsAtUnindexed(t *testing.T) {
	st := exampleState()
	st.Timelines[1].Files[0].Complete = false // mysql-bin.000008
	p := PlanPrune(st, 30*24*time.Hour, day(45))
	_, files, _ := outcome(p)
	for _, f := range files {
		if strings.HasPrefix(f, "000002-b/") {
			t.Errorf("deleted %s though mysql-bin.000008 before it has no index", f)
		}
	}
	// In an older timeline no archiver writes: an unindexed file goes.
	st = exampleState()
	st.Timelines[0].Files[1].Complete = false
	p = PlanPrune(st, 30*24*time.Hour, day(35))
	_, files, _ = outcome(p)
	if !slices.Contains(files, "000001-a/mysql-bin.000002") {
		t.Errorf("unindexed file of an older timeline kept: %v", files)
	}
}

// Two timelines with the same file names (a failover to a server whose
// numbering started over): the snapshot's primary picks the timeline.
func TestPlanPruneSameNamesInTwoTimelines(t *testing.T) {
	st := PruneState{Timelines: []*archive.TimelineState{
		testTimeline("000001-a", 1, binlogNames(1, 4)...),
		testTimeline("000002-b", 3, binlogNames(1, 4)...),
	}}
	s := testSnap(10, "mysql-bin.000003")
	s.Manifest.MasterServerID = 3
	st.Snapshots = []snapshot.Entry{s}
	p := PlanPrune(st, 24*time.Hour, day(12))
	_, files, whole := outcome(p)
	if p.BaseTimeline != "000002-b" || !slices.Equal(whole, []string{"000001-a"}) || len(files) != 4+2 {
		t.Errorf("base timeline %s, whole %v, files %v", p.BaseTimeline, whole, files)
	}
	// A snapshot on each timeline: the newer one, on server 3's, is the
	// base; the older one, on server 1's, is older than the base and goes.
	s1 := testSnap(8, "mysql-bin.000002")
	s1.Manifest.MasterServerID = 1
	st.Snapshots = []snapshot.Entry{s1, s}
	p = PlanPrune(st, 24*time.Hour, day(12))
	snaps, _, whole := outcome(p)
	if p.BaseTimeline != "000002-b" || !slices.Equal(whole, []string{"000001-a"}) || !slices.Equal(snaps, []string{s1.ID}) {
		t.Errorf("a snapshot on each: base timeline %s, whole %v, snapshots deleted %v", p.BaseTimeline, whole, snaps)
	}
	// Only the older one inside the window: it is the base, on server 1's
	// timeline, and nothing of server 3's timeline (after it) goes.
	p = PlanPrune(st, 24*time.Hour, day(9))
	_, files, whole = outcome(p)
	if p.BaseTimeline != "000001-a" || len(whole) != 0 || len(files) != 1 {
		t.Errorf("the older snapshot as base: base timeline %s, whole %v, files %v", p.BaseTimeline, whole, files)
	}
	st.Snapshots = []snapshot.Entry{s}
	// Of a server no timeline was archived from: a bare file name means
	// nothing across timelines, so the snapshot is not located on either
	// and nothing is deleted.
	s.Manifest.MasterServerID = 9
	p = PlanPrune(st, 24*time.Hour, day(12))
	_, files, whole = outcome(p)
	if p.BaseTimeline != "" || p.KeepAll == "" || len(whole) != 0 || len(files) != 0 {
		t.Errorf("unknown server: base timeline %s, keep all %q, whole %v, files %v", p.BaseTimeline, p.KeepAll, whole, files)
	}
}

// Random catalogs and windows: the rules hold whatever the shape.
func TestPlanPruneInvariants(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	for iter := 0; iter < 3000; iter++ {
		var st PruneState
		next := 1
		for i, n := 0, 1+rng.IntN(4); i < n; i++ {
			files := binlogNames(next, next+rng.IntN(6))
			next += len(files) + rng.IntN(3)
			tl := testTimeline(fmt.Sprintf("%06d-x", i+1), uint32(1+rng.IntN(2)), files...)
			for _, f := range tl.Files {
				f.Complete = rng.IntN(8) != 0
			}
			st.Timelines = append(st.Timelines, tl)
		}
		for d := 0; d < 60; d++ {
			switch rng.IntN(6) {
			case 0:
				s := testSnap(d, fmt.Sprintf("mysql-bin.%06d", 1+rng.IntN(next)))
				s.Manifest.MasterServerID = uint32(1 + rng.IntN(2))
				st.Snapshots = append(st.Snapshots, s)
			case 1:
				st.Snapshots = append(st.Snapshots, incomplete(float64(d)))
			}
		}
		keep := time.Duration(1+rng.IntN(40)) * 24 * time.Hour
		p := PlanPrune(st, keep, day(rng.IntN(80)))
		checkInvariants(t, st, p)
	}
}

func checkInvariants(t *testing.T, st PruneState, p *PrunePlan) {
	t.Helper()
	snaps, files, whole := outcome(p)
	if p.KeepAll != "" && len(snaps)+len(files)+len(whole) > 0 {
		t.Fatalf("keep all (%s) but deletes %v %v %v", p.KeepAll, snaps, files, whole)
	}
	var newest *snapshot.Entry
	for i := range st.Snapshots {
		if e := &st.Snapshots[i]; e.Complete && (newest == nil || e.Manifest.Started.After(newest.Manifest.Started)) {
			newest = e
		}
	}
	if newest != nil && slices.Contains(snaps, newest.ID) {
		t.Fatalf("the newest snapshot %s is deleted", newest.ID)
	}
	if n := len(st.Timelines); n > 0 && slices.Contains(whole, st.Timelines[n-1].Name) {
		t.Fatalf("the newest timeline is deleted whole")
	}
	deleted := map[string]bool{}
	for _, f := range files {
		deleted[f] = true
	}
	for i, tl := range p.Timelines {
		// Deleted files are a prefix of each timeline.
		seenKept := false
		for _, f := range tl.Files {
			if f.Delete && seenKept {
				t.Fatalf("timeline %s: %s deleted after a kept file: a gap", tl.Name, f.File)
			}
			seenKept = seenKept || !f.Delete
		}
		if tl.Whole && i > 0 && !p.Timelines[i-1].Whole {
			t.Fatalf("timeline %s deleted whole after a kept one", tl.Name)
		}
	}
	if p.Base == nil {
		return
	}
	if p.Base.Started.After(p.Cutoff) {
		t.Fatalf("base %s after the window start", p.Base.ID)
	}
	// Every kept snapshot's file stays, in every timeline holding it from
	// the snapshot's primary (or any, if none is).
	for _, d := range p.Snapshots {
		if d.Delete || !d.Entry.Complete {
			continue
		}
		m := d.Entry.Manifest
		if m.Started.Before(p.Base.Started) {
			t.Fatalf("kept complete snapshot %s older than the base %s", m.ID, p.Base.ID)
		}
		if at, ok := locate(st.Timelines, m, false); ok {
			key := st.Timelines[at.tl].Name + "/" + at.file
			if deleted[key] {
				t.Fatalf("kept snapshot %s needs %s, which is deleted", m.ID, key)
			}
			for _, tl := range st.Timelines[at.tl:] {
				for _, f := range tl.Files {
					if tl.Name != st.Timelines[at.tl].Name || replication.CompareBinlogNames(f.File, at.file) >= 0 {
						if deleted[tl.Name+"/"+f.File] {
							t.Fatalf("kept snapshot %s needs %s/%s, which is deleted", m.ID, tl.Name, f.File)
						}
					}
				}
			}
		}
	}
	for _, d := range p.Snapshots {
		if d.Delete && d.Entry.Complete && !d.Entry.Manifest.Started.Before(p.Base.Started) {
			t.Fatalf("snapshot %s deleted though not older than the base", d.Entry.ID)
		}
	}
}

// TestPlanPruneKeepsTheHistoryOfARejoin: timeline 3's server rejoined
// timeline 1's history (its join names timeline 1 as parent), so a
// snapshot on timeline 2 restores no point of timeline 3: the base is the
// newest snapshot on timeline 1, and timeline 1 stays. Taking day 10's
// snapshot (timeline 2) as the base would delete timeline 1 whole and
// leave every second of timeline 3 before its first snapshot
// unrestorable.
func TestPlanPruneKeepsTheHistoryOfARejoin(t *testing.T) {
	st := exampleState()
	st.Timelines = append(st.Timelines, testTimeline("000003-c", 1, binlogNames(15, 18)...))
	st.Joins = map[string]*archive.Join{
		"000002-b": {Timeline: "000002-b", Previous: "000001-a"},
		"000003-c": {Timeline: "000003-c", Previous: "000002-b", Parent: "000001-a"},
	}
	p := PlanPrune(st, 30*24*time.Hour, day(45))
	if p.KeepAll != "" || p.Base == nil || p.Base.ID != st.Snapshots[1].ID || p.BaseTimeline != "000001-a" {
		t.Fatalf("base %+v (keep all: %q); want day 3's, on timeline 1", p.Base, p.KeepAll)
	}
	snaps, files, whole := outcome(p)
	if !slices.Equal(snaps, []string{st.Snapshots[0].ID}) || len(whole) != 0 ||
		!slices.Equal(files, []string{"000001-a/mysql-bin.000001", "000001-a/mysql-bin.000002", "000001-a/mysql-bin.000003"}) {
		t.Fatalf("deleted snapshots %v, files %v, timelines %v", snaps, files, whole)
	}
	// Without the parent, day 10's snapshot is the base, as before.
	st.Joins["000003-c"] = &archive.Join{Timeline: "000003-c", Previous: "000002-b"}
	if p := PlanPrune(st, 30*24*time.Hour, day(45)); p.Base == nil || p.Base.ID != st.Snapshots[2].ID {
		t.Fatalf("base %+v; want day 10's", p.Base)
	}
	// A broken join asks nothing of what comes before it: no restore
	// crosses it from anywhere.
	st.Joins["000003-c"].Broken = "no GTIDs"
	st.Joins["000003-c"].Parent = "000001-a"
	if p := PlanPrune(st, 30*24*time.Hour, day(45)); p.Base == nil || p.Base.ID != st.Snapshots[2].ID {
		t.Fatalf("a broken join: base %+v, keep all %q; want day 10's", p.Base, p.KeepAll)
	}
}
