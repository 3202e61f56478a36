package verify

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/binarc/binarc/archive"
)

func TestVerifyLayoutAndStrays(t *testing.T) {
	a := newVerifyArchive(t)
	for _, k := range []string{"c/notes.txt", "c/binlog/scratch/x", "c/binlog/" + vtl1 + "/README", "c/binlog/" + vtl1 + "/mysql-bin.000001/tmp.part", "c/snapshot/junk"} {
		a.put(k, []byte("x"))
	}
	rep := a.verify(VerifyOptions{})
	if !rep.OK() || rep.Notes != 5 {
		t.Fatalf("strays are notes, not problems: %d problems, %d notes:\n%s", rep.Problems, rep.Notes, findings(rep))
	}
	expect(t, rep, SeverityNote, "key=c/binlog/scratch/", "stray folder")
	expect(t, rep, SeverityNote, "key=c/binlog/"+vtl1+"/mysql-bin.000001/tmp.part", "stray object")

	a.put(a.layout.LayoutKey(), []byte(fmt.Sprintf(`{"version": %d}`, archive.LayoutVersion+1)))
	expect(t, a.verify(VerifyOptions{}), SeverityProblem, "key=c/layout.json", "upgrade binarc")
	a.del(a.layout.LayoutKey())
	expect(t, a.verify(VerifyOptions{}), SeverityProblem, "key=c/layout.json", "missing")

	if _, err := Verify(context.Background(), archive.Catalog{Store: a.mem, Layout: archive.Layout{Cluster: "other"}}, VerifyOptions{}); err == nil || !strings.Contains(err.Error(), "no archive") {
		t.Fatalf("verify of a cluster that is not there: %v", err)
	}
}

func TestVerifyTimelines(t *testing.T) {
	a := newVerifyArchive(t)
	segs := a.segments(vtl1, "mysql-bin.000003")
	end := segs[len(segs)-1].End
	// The next timeline records where this one ended: the end of the live
	// file, so nothing is missing.
	a.timeline(vtl2, "mysql-bin.000005", &archive.TimelineEnd{Timeline: vtl1, File: "mysql-bin.000003", Offset: end})
	a.stream(vtl2, 5, 6, true)
	rep := a.verify(VerifyOptions{})
	if !rep.OK() || rep.Counts.Timelines != 2 || rep.Counts.Files != 5 {
		t.Fatalf("two timelines: %+v\n%s", rep.Counts, findings(rep))
	}

	// The old timeline lost its tail: the last segment of its last file.
	keep := a.get(segs[len(segs)-1].Key)
	a.del(segs[len(segs)-1].Key)
	expect(t, a.verify(VerifyOptions{}), SeverityProblem, "timeline="+vtl1, "binlog=mysql-bin.000003", fmt.Sprintf("offset=%d", end), "ended at mysql-bin.000003")
	a.put(segs[len(segs)-1].Key, keep)

	// A middle segment of it: what is after the hole is a leftover note,
	// and the timeline still does not reach its recorded end.
	keep1 := a.get(segs[1].Key)
	a.del(segs[1].Key)
	rep = a.verify(VerifyOptions{})
	expect(t, rep, SeverityNote, "timeline="+vtl1, "leftovers")
	expect(t, rep, SeverityProblem, "timeline="+vtl1, "ended at mysql-bin.000003")

	// Pruned: the old timeline's oldest file half way (its data gone, its
	// index left: a problem, with the hint), then every file of it (a note).
	a.put(segs[1].Key, keep1)
	old := a.segments(vtl1, "mysql-bin.000001")
	for _, s := range old {
		a.del(s.Key)
	}
	expect(t, a.verify(VerifyOptions{}), SeverityProblem, "binlog=mysql-bin.000001", "not stored (the timeline's oldest file: if a prune stopped half way")
	for n := 1; n <= 3; n++ {
		refs, err := a.cat.Segments(context.Background(), vtl1, binlogName(n))
		must(t, err)
		for _, s := range refs {
			a.del(s.Key)
		}
		a.del(a.layout.IndexKey(vtl1, binlogName(n)))
	}
	rep = a.verify(VerifyOptions{})
	if !rep.OK() {
		t.Fatalf("a pruned timeline is no problem:\n%s", findings(rep))
	}
	expect(t, rep, SeverityNote, "timeline="+vtl1, "holds no binlog file")

	// A later timeline without previous.
	a2 := newVerifyArchive(t)
	a2.timeline(vtl2, "mysql-bin.000005", nil)
	expect(t, a2.verify(VerifyOptions{}), SeverityProblem, "timeline="+vtl2, "has no previous")
}

func TestVerifySnapshots(t *testing.T) {
	a := newVerifyArchive(t)
	good, bad, running := "20261125T010000Z-physical", "20261125T020000Z-logical", "20261125T030000Z-physical"
	a.put(a.layout.SnapshotDataKey(good, archive.SnapshotDataPhysical), []byte("data"))
	a.put(a.layout.SnapshotManifestKey(good), []byte("{}"))
	a.put(a.layout.SnapshotDataKey(bad, archive.SnapshotDataLogical), []byte("data"))
	a.put(a.layout.SnapshotManifestKey(bad), []byte("{}"))
	a.put(a.layout.SnapshotDataKey(running, archive.SnapshotDataPhysical), []byte("data"))
	a.put(a.layout.SnapshotPrefix(good)+"extra.bin", []byte("?"))
	var checked []string
	rep, err := verifyWith(context.Background(), a.cat, VerifyOptions{}, func(_ context.Context, _ archive.Catalog, id string) error {
		checked = append(checked, id)
		if id == bad {
			return errors.New("data object c/snapshot/x/dump.sql.zst: object does not exist")
		}
		return nil
	})
	must(t, err)
	if strings.Join(checked, ",") != good+","+bad || rep.Counts.Snapshots != 2 {
		t.Fatalf("snapshots checked: %v (count %d); want the two complete ones", checked, rep.Counts.Snapshots)
	}
	expect(t, rep, SeverityProblem, "snapshot="+bad, "does not exist")
	expect(t, rep, SeverityNote, "snapshot="+running, "incomplete")
	expect(t, rep, SeverityNote, "extra.bin", "stray object")
	if rep.Problems != 1 {
		t.Fatalf("%d problems:\n%s", rep.Problems, findings(rep))
	}
}

// TestEventWalkerChunks feeds a file to the walker in random pieces, as a
// compacted object streams: the same events and no finding, and a broken
// size found at its offset, with the walk resuming at the next segment.
func TestEventWalkerChunks(t *testing.T) {
	a := newVerifyArchive(t)
	fs, err := a.cat.FileState(context.Background(), vtl1, archive.FileRef{Name: "mysql-bin.000001", Indexed: true})
	must(t, err)
	var file bytes.Buffer
	_, err = a.cat.Rebuild(context.Background(), fs, &file)
	must(t, err)
	rng := rand.New(rand.NewPCG(3, 4))
	feed := func(data []byte) (*eventWalker, []Finding) {
		var got []Finding
		w := newEventWalker(vtl1, "mysql-bin.000001", fs.Segments, nil, func(f Finding) { got = append(got, f) })
		for len(data) > 0 {
			n := min(len(data), 1+rng.IntN(3000))
			w.Write(data[:n])
			data = data[n:]
		}
		w.finish()
		return w, got
	}
	w, got := feed(file.Bytes())
	if len(got) != 0 || w.events != 12 || w.rotateTo != "mysql-bin.000002" || !w.tailKnown {
		t.Fatalf("clean file: %d events, rotate to %q, findings %v", w.events, w.rotateTo, got)
	}
	broken := bytes.Clone(file.Bytes())
	at := fs.Segments[0].End - 1000 // the first segment's last event
	binary.LittleEndian.PutUint32(broken[at+9:], 5)
	w, got = feed(broken)
	if len(got) != 1 || *got[0].Offset != at || !strings.Contains(got[0].Message, "header says 5 bytes") {
		t.Fatalf("broken size at %d: %v", at, got)
	}
	if w.events != 11 {
		t.Fatalf("walk did not resume at the next segment: %d events", w.events)
	}
}

// TestVerifyJoin: a recorded join must read and name its own timeline and
// an earlier one.
func TestVerifyJoin(t *testing.T) {
	a := newVerifyArchive(t)
	key := a.layout.JoinKey(vtl1)
	a.put(key, []byte("not json"))
	expect(t, a.verify(VerifyOptions{}), SeverityProblem, "key="+key, "cannot read the join")
	a.put(key, []byte(`{"version": 1, "timeline": "`+vtl1+`", "previous": "`+vtl2+`"}`))
	expect(t, a.verify(VerifyOptions{}), SeverityProblem, "key="+key, "not an earlier timeline")
	a.put(key, []byte(`{"version": 2, "timeline": "`+vtl1+`", "previous": "000000-20261124T000000Z", "parent": "000000-20261124T000000Z"}`))
	expect(t, a.verify(VerifyOptions{}), SeverityProblem, "key="+key, "parent timeline", "not older than its previous")
	a.put(key, []byte(`{"version": 1, "timeline": "`+vtl1+`", "previous": "000000-20261124T000000Z", "parent": "000000-20261123T000000Z"}`))
	expect(t, a.verify(VerifyOptions{}), SeverityProblem, "key="+key, "cannot read the join", "version 1 with parent")
	a.put(key, []byte(`{"version": 2, "timeline": "`+vtl1+`", "previous": "000000-20261124T000000Z", "parent": "000000-20261123T000000Z"}`))
	if rep := a.verify(VerifyOptions{}); !rep.OK() || rep.Notes != 0 {
		t.Fatalf("a join to an older parent is fine:\n%s", findings(rep))
	}
	a.put(key, []byte(`{"version": 1, "timeline": "`+vtl1+`", "previous": "000000-20261124T000000Z"}`))
	if rep := a.verify(VerifyOptions{}); !rep.OK() || rep.Notes != 0 {
		t.Fatalf("a join to a timeline retention deleted is fine, and join.json no stray:\n%s", findings(rep))
	}
}
