package retention

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/archive/objstore"
	"github.com/binarc/binarc/lease"
	"github.com/binarc/binarc/snapshot"
)

const (
	pruneTL1 = "000001-20261101T000000Z"
	pruneTL2 = "000002-20261108T000000Z"
)

// pruneArchive stores the example archive (exampleState) for real:
// timeline 1 with files 1-5 (3 compacted), timeline 2 with files 8-11
// complete and 12 live, snapshots on days 1, 3, 10 and 20, and an
// incomplete one from day 2.
func pruneArchive(t *testing.T, s objstore.Store, l archive.Layout) []snapshot.Entry {
	t.Helper()
	ctx := context.Background()
	put := func(key string, v any) {
		t.Helper()
		data, ok := v.([]byte)
		if !ok {
			var err error
			if data, err = json.Marshal(v); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.Put(ctx, key, data, objstore.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	put(l.LayoutKey(), []byte(`{"version": 1}`))
	file := func(tl, name string, indexed, compacted bool) {
		segs := []archive.SegmentInfo{{Start: 0, End: 500}, {Start: 500, End: 1000}}
		if !compacted {
			for _, sg := range segs {
				put(l.SegmentKey(tl, name, sg.Start, sg.End), []byte("segment"))
			}
		} else {
			put(l.CompactedKey(tl, name), []byte("compacted"))
		}
		if indexed {
			put(l.IndexKey(tl, name), archive.FileIndex{Version: 1, Timeline: tl, File: name, Size: 1000, Closed: true, Segments: segs})
		}
	}
	put(l.TimelineKey(pruneTL1), archive.TimelineInfo{Version: 1, Timeline: pruneTL1, StartFile: "mysql-bin.000001", SourceServerID: 1})
	for i, f := range binlogNames(1, 5) {
		file(pruneTL1, f, true, i == 2)
	}
	put(l.TimelineKey(pruneTL2), archive.TimelineInfo{Version: 1, Timeline: pruneTL2, StartFile: "mysql-bin.000008", SourceServerID: 1,
		Previous: &archive.TimelineEnd{Timeline: pruneTL1, File: "mysql-bin.000005", Offset: 1000}})
	for i, f := range binlogNames(8, 12) {
		file(pruneTL2, f, i < 4, false)
	}
	snaps := exampleState().Snapshots
	for _, e := range snaps {
		e.Manifest.Version, e.Manifest.DataKey, e.Manifest.SHA256 = 1, l.SnapshotDataKey(e.ID, archive.SnapshotDataPhysical), strings.Repeat("0", 64)
		e.Manifest.StoredSize = int64(len("backup"))
		put(e.Manifest.DataKey, []byte("backup"))
		put(l.SnapshotManifestKey(e.ID), snapshot.MarshalManifest(e.Manifest))
	}
	inc := incomplete(2)
	put(l.SnapshotDataKey(inc.ID, archive.SnapshotDataPhysical), []byte("half a backup"))
	return append(snaps, inc)
}

// allObjects is every key in the store with its content.
func allObjects(t *testing.T, s objstore.Store) map[string]string {
	t.Helper()
	keys, err := ListAll(context.Background(), s, "")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, k := range keys {
		data, _, err := objstore.ReadAll(context.Background(), s, k)
		if err != nil {
			t.Fatal(err)
		}
		out[k] = string(data)
	}
	return out
}

func TestPruneDryRunChangesNothing(t *testing.T) {
	ctx := context.Background()
	s := objstore.NewMemory()
	l := archive.Layout{Cluster: "c"}
	pruneArchive(t, s, l)
	before := allObjects(t, s)
	res, err := Prune(ctx, PruneRequest{Store: s, Layout: l, Keep: 30 * 24 * time.Hour, Now: day(45), DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if after := allObjects(t, s); !maps.Equal(before, after) {
		t.Fatalf("a dry run changed the store: %d objects before, %d after", len(before), len(after))
	}
	snaps, _, whole := outcome(res.Plan)
	if len(snaps) != 3 || len(whole) != 1 || len(res.SnapshotsDeleted)+res.FilesDeleted != 0 {
		t.Fatalf("dry-run plan: snapshots %v, whole %v; result %+v", snaps, whole, res)
	}
}

func TestPruneDeletesExactlyWhatTheWindowDoesNotNeed(t *testing.T) {
	ctx := context.Background()
	s := objstore.NewMemory()
	l := archive.Layout{Cluster: "c"}
	snaps := pruneArchive(t, s, l)
	before := allObjects(t, s)
	res, err := Prune(ctx, PruneRequest{Store: s, Layout: l, Keep: 30 * 24 * time.Hour, Now: day(45)})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := slices.Sorted(slices.Values(res.SnapshotsDeleted)), slices.Sorted(slices.Values([]string{snaps[0].ID, snaps[1].ID, snaps[4].ID})); !slices.Equal(got, want) {
		t.Errorf("snapshots deleted %v", res.SnapshotsDeleted)
	}
	if !slices.Equal(res.TimelinesDeleted, []string{pruneTL1}) || res.FilesDeleted != 6 {
		t.Errorf("timelines deleted %v, files %d", res.TimelinesDeleted, res.FilesDeleted)
	}
	var want []string
	for k := range before {
		keep := strings.HasPrefix(k, l.TimelinePrefix(pruneTL2)) && !strings.Contains(k, "mysql-bin.000008") ||
			strings.HasPrefix(k, l.SnapshotPrefix(snaps[2].ID)) || strings.HasPrefix(k, l.SnapshotPrefix(snaps[3].ID)) ||
			k == l.LayoutKey()
		if keep {
			want = append(want, k)
		}
	}
	want = append(want, l.PruneLeaseKey())
	slices.Sort(want)
	got := slices.Sorted(maps.Keys(allObjects(t, s)))
	if !slices.Equal(got, want) {
		t.Fatalf("left after the prune:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// The lease is released.
	if li, _ := lease.Read(ctx, s, l.PruneLeaseKey(), time.Now()); li != nil {
		t.Errorf("prune lease still held: %+v", li)
	}
	// Pruning again finds nothing more to do.
	res, err = Prune(ctx, PruneRequest{Store: s, Layout: l, Keep: 30 * 24 * time.Hour, Now: day(45)})
	if err != nil || len(res.Objects.Deleted) != 0 {
		t.Fatalf("second prune: %v, deleted %v", err, res.Objects.Deleted)
	}
}

// A snapshot whose manifest cannot be deleted is still complete: its
// binlog stays. The failure is reported by key, and the next prune
// finishes the job.
func TestPruneFailedManifestDeleteKeepsBinlog(t *testing.T) {
	ctx := context.Background()
	mem := objstore.NewMemory()
	f := objstore.NewFaulty(mem)
	l := archive.Layout{Cluster: "c"}
	snaps := pruneArchive(t, f, l)
	bad := l.SnapshotManifestKey(snaps[1].ID)
	f.SetHook(func(op, key string) error {
		if op == objstore.OpDelete && key == bad {
			return errors.New("access denied")
		}
		return nil
	})
	res, err := Prune(ctx, PruneRequest{Store: f, Layout: l, Keep: 30 * 24 * time.Hour, Now: day(45)})
	if !errors.Is(err, ErrPruneIncomplete) || len(res.Objects.Failed) != 1 || res.Objects.Failed[0].Key != bad {
		t.Fatalf("err %v; failures %v", err, res.Objects.Failed)
	}
	if !strings.Contains(res.Stopped, "still complete") || res.FilesDeleted != 0 || len(res.TimelinesDeleted) != 0 {
		t.Fatalf("stopped %q; files %d, timelines %v", res.Stopped, res.FilesDeleted, res.TimelinesDeleted)
	}
	if _, err := snapshot.ReadManifest(ctx, mem, l, snaps[1].ID, nil); err != nil {
		t.Fatalf("the snapshot whose manifest could not go lost it: %v", err)
	}
	if tls, _ := (archive.Catalog{Store: mem, Layout: l}).Timelines(ctx); len(tls) != 2 {
		t.Fatalf("binlog deleted though a doomed snapshot is still complete: timelines %v", tls)
	}
	f.SetHook(nil)
	res, err = Prune(ctx, PruneRequest{Store: f, Layout: l, Keep: 30 * 24 * time.Hour, Now: day(45)})
	if err != nil || !slices.Equal(res.TimelinesDeleted, []string{pruneTL1}) {
		t.Fatalf("second prune: %v, timelines deleted %v", err, res.TimelinesDeleted)
	}
}

// A binlog delete that fails stops the prune at that file: the files
// after it stay, so what is kept has no gap.
func TestPruneFailedBinlogDeleteStops(t *testing.T) {
	ctx := context.Background()
	f := objstore.NewFaulty(objstore.NewMemory())
	l := archive.Layout{Cluster: "c"}
	pruneArchive(t, f, l)
	bad := l.SegmentKey(pruneTL1, "mysql-bin.000002", 500, 1000)
	f.SetHook(func(op, key string) error {
		if op == objstore.OpDelete && key == bad {
			return errors.New("timeout")
		}
		return nil
	})
	res, err := Prune(ctx, PruneRequest{Store: f, Layout: l, Keep: 30 * 24 * time.Hour, Now: day(45)})
	if !errors.Is(err, ErrPruneIncomplete) || !strings.Contains(res.Stopped, pruneTL1) {
		t.Fatalf("err %v, stopped %q", err, res.Stopped)
	}
	cat := archive.Catalog{Store: f, Layout: l}
	refs, _ := cat.Files(ctx, pruneTL1)
	var names []string
	for _, r := range refs {
		names = append(names, r.Name)
		if !r.Indexed {
			t.Errorf("%s lost its index", r.Name)
		}
	}
	if !slices.Equal(names, binlogNames(2, 5)) {
		t.Errorf("timeline 1 holds %v; want files 2 to 5", names)
	}
	if refs, _ := cat.Files(ctx, pruneTL2); len(refs) != 5 {
		t.Errorf("timeline 2 touched after the failure: %v", refs)
	}
}

func TestPruneLeases(t *testing.T) {
	ctx := context.Background()
	s := objstore.NewMemory()
	l := archive.Layout{Cluster: "c"}
	pruneArchive(t, s, l)
	req := PruneRequest{Store: s, Layout: l, Keep: 30 * 24 * time.Hour, Now: day(45)}
	// Another prune runs, on another host.
	holder, _ := json.Marshal(lease.Info{ID: "x", Host: "elsewhere", PID: 1, Command: "binarc prune", Expires: time.Now().Add(time.Minute)})
	if _, err := s.Put(ctx, l.PruneLeaseKey(), holder, objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	var held *lease.HeldError
	if _, err := Prune(ctx, req); !errors.As(err, &held) {
		t.Fatalf("prune beside another: %v", err)
	}
	// A dry run takes no lease, so it runs.
	req.DryRun = true
	if _, err := Prune(ctx, req); err != nil {
		t.Fatalf("dry run beside another prune: %v", err)
	}
	s.Delete(ctx, l.PruneLeaseKey())
	// Run by the stream, it needs the stream's lease, handed over: one
	// another writer took over meanwhile is refused.
	streamLease, err := lease.Acquire(ctx, s, l, "binarc stream", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := json.Marshal(lease.Info{ID: "y", Host: "elsewhere", PID: 1, Command: "binarc stream", Expires: time.Now().Add(time.Minute)})
	if _, err := s.Put(ctx, l.LeaseKey(), other, objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	req.DryRun, req.StreamLease = false, streamLease
	if _, err := Prune(ctx, req); !errors.Is(err, ErrNotLeaseHolder) {
		t.Fatalf("stream prune under a lease taken over: %v", err)
	}
	s.Delete(ctx, l.LeaseKey())
	if req.StreamLease, err = lease.Acquire(ctx, s, l, "binarc stream", time.Minute); err != nil {
		t.Fatal(err)
	}
	if res, err := Prune(ctx, req); err != nil || len(res.TimelinesDeleted) != 1 {
		t.Fatalf("stream prune under its lease: %v", err)
	}
	req.Keep = 30 * time.Minute
	if _, err := Prune(ctx, req); err == nil || !strings.Contains(err.Error(), fmt.Sprint(MinKeep)) {
		t.Fatalf("keep below the minimum: %v", err)
	}
}

// A newer layout is refused: prune deletes only what it understands.
func TestPruneRefusesNewerLayout(t *testing.T) {
	ctx := context.Background()
	s := objstore.NewMemory()
	l := archive.Layout{Cluster: "c"}
	pruneArchive(t, s, l)
	s.Put(ctx, l.LayoutKey(), []byte(`{"version": 99}`), objstore.PutOptions{})
	before := allObjects(t, s)
	if _, err := Prune(ctx, PruneRequest{Store: s, Layout: l, Keep: 30 * 24 * time.Hour, Now: day(45)}); err == nil || !strings.Contains(err.Error(), "upgrade binarc") {
		t.Fatalf("newer layout: %v", err)
	}
	if !maps.Equal(before, allObjects(t, s)) {
		t.Fatal("a refused prune changed the store")
	}
}

// TestPruneDrillRecords: drill reports older than the window go with the
// prune (a dry run only lists them), the newest stays however old, and an
// object under drill/ that is not a drill record is left alone.
func TestPruneDrillRecords(t *testing.T) {
	ctx := context.Background()
	s := objstore.NewMemory()
	l := archive.Layout{Cluster: "c"}
	pruneArchive(t, s, l)
	put := func(key string) {
		t.Helper()
		if _, err := s.Put(ctx, key, []byte(`{}`), objstore.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []int{1, 8, 40} {
		put(l.DrillKey(day(d)))
	}
	put(l.DrillsPrefix() + "notes.txt")
	req := PruneRequest{Store: s, Layout: l, Keep: 30 * 24 * time.Hour, Now: day(45), DryRun: true}
	res, err := Prune(ctx, req)
	if err != nil || len(res.Drills) != 2 {
		t.Fatalf("dry run: drills %v, %v; want the two before day 15", res.Drills, err)
	}
	rc, _, err := s.Get(ctx, l.DrillKey(day(1)))
	if err != nil {
		t.Fatalf("a dry run deleted a drill record: %v", err)
	}
	rc.Close()
	req.DryRun = false
	if res, err = Prune(ctx, req); err != nil || len(res.Drills) != 2 {
		t.Fatalf("prune: drills %v, %v", res.Drills, err)
	}
	left, err := s.List(ctx, l.DrillsPrefix())
	if err != nil || len(left) != 2 || left[0].Key != l.DrillKey(day(40)) {
		t.Fatalf("left under drill/: %+v, %v; want day 40's record and notes.txt", left, err)
	}
	// Alone and old, the newest record stays.
	req.Now = day(400)
	if res, err = Prune(ctx, req); err != nil || len(res.Drills) != 0 {
		t.Fatalf("the newest drill record must stay: deleted %v, %v", res.Drills, err)
	}
}
