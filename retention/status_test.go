package retention

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/archive/objstore"
	"github.com/binarc/binarc/replication"
)

// statusArchive is pruneArchive with every file indexed (its live file's
// segments are not binlog), so the catalog reads from indexes alone.
func statusArchive(t *testing.T) archive.Catalog {
	t.Helper()
	s := objstore.NewMemory()
	l := archive.Layout{Cluster: "c"}
	pruneArchive(t, s, l)
	ix := archive.FileIndex{Version: 1, Timeline: pruneTL2, File: "mysql-bin.000012", Size: 1000, Closed: true,
		Segments: []archive.SegmentInfo{{Start: 0, End: 500}, {Start: 500, End: 1000}}}
	if _, err := s.Put(context.Background(), l.IndexKey(pruneTL2, ix.File), archive.MarshalJSON(ix), objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	return archive.Catalog{Store: s, Layout: l}
}

// TestReadStatus: the timelines, the snapshots, and windows that end at
// each timeline's end when the join cannot be worked out (the archive
// holds no binlog to read it from), which the status says.
func TestReadStatus(t *testing.T) {
	cat := statusArchive(t)
	st, err := ReadStatus(context.Background(), StatusRequest{Catalog: cat, WorkDir: t.TempDir()})
	must(t, err)
	if st.Cluster != "c" || len(st.Timelines) != 2 || len(st.Timelines[1].Files) != 5 || len(st.Snapshots) != 5 || st.Lag != nil {
		t.Fatalf("status: cluster %q, %d timelines, %d snapshots, lag %v", st.Cluster, len(st.Timelines), len(st.Snapshots), st.Lag)
	}
	if st.JoinsProblem == nil || st.Joins != nil {
		t.Fatalf("joins %v, problem %v; want the problem of reading segments that are not binlog", st.Joins, st.JoinsProblem)
	}
	if len(st.Windows) != 2 || st.Windows[0].ToTimeline != pruneTL1 || st.Windows[1].Timeline != pruneTL2 {
		t.Fatalf("windows %+v; want one per timeline", st.Windows)
	}
	data, err := json.Marshal(st)
	must(t, err)
	for _, key := range []string{`"cluster":"c"`, `"timelines":`, `"snapshots":`, `"restorable":`} {
		if !strings.Contains(string(data), key) {
			t.Errorf("ls --json lacks %s", key)
		}
	}
	if strings.Contains(string(data), `"lag"`) || strings.Contains(string(data), `"joins"`) {
		t.Errorf("ls --json shows a lag or joins it does not have")
	}
}

// TestReadStatusRecordedJoin: a recorded join joins the windows.
func TestReadStatusRecordedJoin(t *testing.T) {
	cat := statusArchive(t)
	j := archive.Join{Version: archive.JoinVersion, Timeline: pruneTL2, Previous: pruneTL1,
		At: archive.Point{File: "mysql-bin.000008", Offset: 4}, PreviousEnd: archive.Point{File: "mysql-bin.000005", Offset: 1000}}
	must(t, cat.PutOnce(context.Background(), cat.Layout.JoinKey(pruneTL2), archive.MarshalJSON(j)))
	st, err := ReadStatus(context.Background(), StatusRequest{Catalog: cat, WorkDir: t.TempDir()})
	must(t, err)
	if st.JoinsProblem != nil || len(st.Joins) != 2 || st.Joins[0] != nil || st.Joins[1] == nil || st.Joins[1].Previous != pruneTL1 {
		t.Fatalf("joins %v, problem %v; want the recorded one", st.Joins, st.JoinsProblem)
	}
	if len(st.Windows) != 1 || st.Windows[0].Timeline != pruneTL1 || st.Windows[0].ToTimeline != pruneTL2 {
		t.Fatalf("windows %+v; want one across the join", st.Windows)
	}
}

// TestReadStatusLag: a primary that cannot be asked is a lag that says
// why, not an error; of several servers, the one the newest timeline
// archives is asked.
func TestReadStatusLag(t *testing.T) {
	cat := statusArchive(t)
	ti, err := cat.ReadTimeline(context.Background(), pruneTL2)
	must(t, err)
	ti.SourceAddr = "127.0.0.1:2"
	_, err = cat.Store.Put(context.Background(), cat.Layout.TimelineKey(pruneTL2), archive.MarshalJSON(ti), objstore.PutOptions{})
	must(t, err)
	sources := []replication.Config{{Host: "127.0.0.1", Port: 1, User: "u"}, {Host: "127.0.0.1", Port: 2, User: "u"}}
	st, err := ReadStatus(context.Background(), StatusRequest{Catalog: cat, Sources: sources, WorkDir: t.TempDir()})
	must(t, err)
	if st.Lag == nil || !strings.HasPrefix(st.Lag.Summary, "cannot tell") || len(st.Windows) != 2 {
		t.Fatalf("lag %+v, windows %d; want cannot tell, and the windows", st.Lag, len(st.Windows))
	}
	newest := st.Timelines[1]
	if got := archivedSource(sources, newest); got.Port != 2 {
		t.Errorf("asked %s; want the server the newest timeline archives", got.Addr())
	}
	newest.Info.SourceAddr = "10.0.0.9:3306"
	if got := archivedSource(sources, newest); got.Port != 1 {
		t.Errorf("asked %s; want the first when none is archived", got.Addr())
	}
}

// TestReadStatusEmpty: a cluster with nothing is an error naming it.
func TestReadStatusEmpty(t *testing.T) {
	cat := archive.Catalog{Store: objstore.NewMemory(), Layout: archive.Layout{Cluster: "nothing"}}
	_, err := ReadStatus(context.Background(), StatusRequest{Catalog: cat})
	if err == nil || !strings.Contains(err.Error(), `cluster "nothing" has no archive`) {
		t.Fatalf("%v; want no archive", err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
