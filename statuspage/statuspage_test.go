package statuspage

import (
	"bytes"
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/retention"
	"github.com/binarc/binarc/snapshot"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// exampleStatus is a cluster with a failover (two timelines and their
// join), two snapshots and a gap in the newer timeline.
func exampleStatus() *retention.Status {
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	tl1 := &archive.TimelineState{Name: "000001-20261201T000000Z", Info: &archive.TimelineInfo{SourceAddr: "db-a:3306", SourceServerID: 1, Reason: "new archive", Created: t0},
		Files: []*archive.FileState{{File: "mysql-bin.000001", Size: 1000, FirstEventTime: t0, LastEventTime: t0.Add(20 * time.Hour), Complete: true}}}
	tl2 := &archive.TimelineState{Name: "000002-20261201T200000Z", Info: &archive.TimelineInfo{SourceAddr: "db-b:3306", SourceServerID: 2, Reason: "the writable server changed", Created: t0.Add(20 * time.Hour)},
		Files: []*archive.FileState{
			{File: "mysql-bin.000007", Size: 1000, FirstEventTime: t0.Add(20 * time.Hour), LastEventTime: t0.Add(30 * time.Hour), Complete: true},
			{File: "mysql-bin.000008", Size: 500, FirstEventTime: t0.Add(30 * time.Hour), LastEventTime: t0.Add(31 * time.Hour), Gap: errors.New("bytes [4000,9000) are not stored")},
		}}
	join := &archive.Join{Version: 1, Timeline: tl2.Name, Previous: tl1.Name, SwitchTime: t0.Add(20 * time.Hour), Final: true,
		At: archive.Point{File: "mysql-bin.000007", Offset: 4}, PreviousEnd: archive.Point{File: "mysql-bin.000001", Offset: 900}, Lost: []string{"0-1-41..42"}}
	snaps := []snapshot.Entry{
		{ID: "20261201T010000Z-physical", Time: t0.Add(time.Hour), Complete: true, Manifest: &snapshot.Manifest{
			SourceServerID: 3, MasterServerID: 1, Started: t0.Add(time.Hour), Coordinates: snapshot.Coordinates{File: "mysql-bin.000001", Pos: 400}}},
		{ID: "20261201T220000Z-physical", Time: t0.Add(22 * time.Hour), Complete: true, Manifest: &snapshot.Manifest{
			SourceServerID: 3, MasterServerID: 2, Started: t0.Add(22 * time.Hour), Coordinates: snapshot.Coordinates{File: "mysql-bin.000007", Pos: 400}}},
	}
	st := &retention.Status{Cluster: "main", Timelines: []*archive.TimelineState{tl1, tl2}, Snapshots: snaps, Joins: []*archive.Join{nil, join},
		Lag: &retention.Lag{Summary: "0 bytes behind mysql-bin.000008"}}
	st.Windows = retention.WindowsAcross(st.Timelines, st.Snapshots, st.Joins)
	return st
}

// TestRender: the page shows both timelines, the join, both snapshots,
// the gap, the lag and the last drill, in the drawing (classes and data
// attributes) and in the text below it; names from the bucket are
// escaped.
func TestRender(t *testing.T) {
	st := exampleStatus()
	st.Timelines[0].Info.Reason = `<script>alert("x")</script>`
	var b bytes.Buffer
	if err := Render(&b, Page{Status: st, Now: time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC), LastDrill: "2026-12-01T05:00:00Z, equal, RTO 4m12s"}); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	for _, want := range []string{
		`class="timeline" data-name="000001-20261201T000000Z"`,
		`class="timeline" data-name="000002-20261201T200000Z"`,
		`class="join" data-timeline="000002-20261201T200000Z" data-previous="000001-20261201T000000Z" data-time="2026-12-01T20:00:00Z"`,
		`class="snapshot" data-id="20261201T010000Z-physical"`,
		`class="snapshot" data-id="20261201T220000Z-physical"`,
		`class="gap" data-timeline="000002-20261201T200000Z" data-file="mysql-bin.000008"`,
		"bytes [4000,9000) are not stored",
		"lost at the switch: 0-1-41..42",
		"0 bytes behind mysql-bin.000008",
		"RTO 4m12s",
		`id="windows"`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %s", want)
		}
	}
	if strings.Contains(page, "<script>") || strings.Contains(page, "http://") || strings.Contains(page, "https://") {
		t.Error("the page holds a script or an external reference")
	}
}

func TestRenderNeedsStatus(t *testing.T) {
	if err := Render(&bytes.Buffer{}, Page{}); err == nil {
		t.Fatal("rendered without a status")
	}
}

// TestWatcher: the page is served at / from the newest status read on
// the schedule (not per request), with a content security policy that
// allows no script or external asset; before the first read a 503; the
// window's ends, the gaps and the timelines are exported as metrics.
func TestWatcher(t *testing.T) {
	reads := make(chan struct{}, 10)
	w := NewWatcher(func(context.Context) (*retention.Status, error) {
		reads <- struct{}{}
		return exampleStatus(), nil
	}, time.Hour)
	rec := httptest.NewRecorder()
	w.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Code != 503 {
		t.Fatalf("before the first read: %d", rec.Code)
	}
	if n := testutil.CollectAndCount(w); n != 0 {
		t.Fatalf("%d metrics before the first read", n)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go w.Run(ctx)
	<-reads
	deadline := time.Now().Add(10 * time.Second)
	for {
		if st, _ := w.status(); st != nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	for range 3 {
		rec := httptest.NewRecorder()
		w.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
		if rec.Code != 200 || !strings.Contains(rec.Body.String(), `class="join"`) || !strings.Contains(rec.Header().Get("Content-Security-Policy"), "default-src 'none'") {
			t.Fatalf("GET /: %d %q", rec.Code, rec.Header())
		}
	}
	if len(reads) != 0 {
		t.Errorf("requests read the status again")
	}
	rec = httptest.NewRecorder()
	w.ServeHTTP(rec, httptest.NewRequest("GET", "/other", nil))
	if rec.Code != 404 {
		t.Errorf("GET /other: %d", rec.Code)
	}
	want := `
# HELP binarc_archive_gaps Binlog files of the archive with a byte range missing, as of the last status read.
# TYPE binarc_archive_gaps gauge
binarc_archive_gaps 1
# HELP binarc_archive_timelines Timelines in the archive (one more at each failover or flip), as of the last status read.
# TYPE binarc_archive_timelines gauge
binarc_archive_timelines 2
`
	if err := testutil.CollectAndCompare(w, strings.NewReader(want), "binarc_archive_gaps", "binarc_archive_timelines"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(w, "binarc_restorable_window_start_timestamp_seconds", "binarc_restorable_window_end_timestamp_seconds"); n != 2 {
		t.Errorf("%d window metrics, want 2", n)
	}
}
