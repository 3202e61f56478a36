package integration

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/archive/objstore"
	"github.com/binarc/binarc/internal/binlogtest"
	"github.com/binarc/binarc/internal/xbstreamtest"
	"github.com/binarc/binarc/snapshot"
	"github.com/binarc/binarc/snapshot/snapshottest"
	"github.com/klauspost/compress/zstd"
)

// statusArchive writes, into a directory store, the archive of a cluster
// that failed over once: timeline 1 (server 1) and timeline 2 (server 2)
// with their recorded join, two snapshots, and a gap in timeline 2's
// file (a segment missing in the middle).
func statusArchive(t *testing.T, dir string, t0 time.Time) (tl1, tl2, snap1, snap2 string) {
	t.Helper()
	ctx := context.Background()
	store, err := objstore.NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	l := archive.Layout{Cluster: "main"}
	put := func(key string, data []byte) {
		t.Helper()
		if _, err := store.Put(ctx, key, data, objstore.PutOptions{IfAbsent: true}); err != nil {
			t.Fatal(err)
		}
	}
	enc, _ := zstd.NewWriter(nil, zstd.WithEncoderCRC(true))
	segment := func(tl, file string, b []byte, start, end uint64) {
		put(l.SegmentKey(tl, file, start, end), enc.EncodeAll(b[start:end], nil))
	}
	tl1, tl2 = archive.FormatTimeline(1, t0), archive.FormatTimeline(2, t0.Add(10*time.Hour))
	put(l.LayoutKey(), archive.MarshalJSON(archive.LayoutInfo{Version: archive.LayoutVersionPlain}))

	f1 := binlogtest.NewFileAt("mysql-bin.000001", t0)
	for i := 1; i <= 5; i++ {
		f1.Tx("0-1-"+strconv.Itoa(i), t0.Add(time.Duration(i)*time.Hour))
	}
	put(l.TimelineKey(tl1), archive.MarshalJSON(&archive.TimelineInfo{Version: archive.LayoutVersionPlain, Timeline: tl1, StartFile: "mysql-bin.000001",
		SourceAddr: "db-a:3306", SourceServerID: 1, Reason: "new archive", Created: t0}))
	segment(tl1, "mysql-bin.000001", f1.Bytes(), 0, uint64(len(f1.Bytes())))

	f2 := binlogtest.NewFileAt("mysql-bin.000001", t0.Add(10*time.Hour), "0-1-5")
	for i := 6; i <= 8; i++ {
		f2.Tx("0-2-"+strconv.Itoa(i), t0.Add(time.Duration(i+4)*time.Hour))
	}
	// The next file, whole: the gap in the first is a hole in the middle
	// of the timeline (a newest file's hole is where its archive ends).
	f3 := binlogtest.NewFileAt("mysql-bin.000002", t0.Add(12*time.Hour), "0-2-8")
	f3.Tx("0-2-9", t0.Add(13*time.Hour))
	put(l.TimelineKey(tl2), archive.MarshalJSON(&archive.TimelineInfo{Version: archive.LayoutVersionPlain, Timeline: tl2, StartFile: "mysql-bin.000001",
		SourceAddr: "db-b:3306", SourceServerID: 2, Reason: "the writable server changed (failover)", Created: t0.Add(10 * time.Hour),
		Previous: &archive.TimelineEnd{Timeline: tl1, File: "mysql-bin.000001", Offset: uint64(len(f1.Bytes()))}}))
	b2 := f2.Bytes()
	// Stored: up to the end of 0-2-6, and from the start of 0-2-8 on; the
	// transaction between is missing.
	segment(tl2, "mysql-bin.000001", b2, 0, f2.Ends["0-2-6"])
	segment(tl2, "mysql-bin.000001", b2, f2.Starts["0-2-8"], uint64(len(b2)))
	segment(tl2, "mysql-bin.000002", f3.Bytes(), 0, uint64(len(f3.Bytes())))
	join := archive.Join{Version: archive.JoinVersion, Timeline: tl2, Previous: tl1, Meet: "0-1-5", Final: true,
		At: archive.Point{File: "mysql-bin.000001", Offset: f2.Starts["0-2-6"]}, PreviousEnd: archive.Point{File: "mysql-bin.000001", Offset: uint64(len(f1.Bytes()))},
		SwitchTime: t0.Add(10 * time.Hour)}
	data, _ := json.Marshal(join)
	put(l.JoinKey(tl2), data)

	// Two snapshots of a replica: one of server 1 after 0-1-1, one of
	// server 2 after 0-2-6, each with its coordinates in the archive.
	snapshotAt := func(at time.Time, master uint32, f *binlogtest.File, after string) string {
		id := archive.FormatSnapshotID(at, "physical")
		m := snapshottest.Store(t, store, l, id, xbstreamtest.Sample())
		m.SourceServerID, m.MasterServerID = 3, master
		m.Started, m.Finished = at, at.Add(2*time.Minute)
		m.Coordinates = snapshot.Coordinates{File: "mysql-bin.000001", Pos: f.Ends[after], GTIDSet: after, From: "replica"}
		if _, err := store.Put(ctx, l.SnapshotManifestKey(id), snapshot.MarshalManifest(m), objstore.PutOptions{}); err != nil {
			t.Fatal(err)
		}
		return id
	}
	snap1 = snapshotAt(t0.Add(90*time.Minute), 1, f1, "0-1-1")
	snap2 = snapshotAt(t0.Add(10*time.Hour+30*time.Minute), 2, f2, "0-2-6")
	return tl1, tl2, snap1, snap2
}

// TestStatusPageInChromium: binarc ls --html writes the status page of an
// archive with a failover, two snapshots and a gap; headless Chromium
// (Debian's) renders it with no console message, and its DOM shows both
// timelines, the join, both snapshots and the gap, each with its time.
func TestStatusPageInChromium(t *testing.T) {
	t.Parallel()
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("chromium is not installed (scripts/deps.sh installs Debian's): %v", err)
	}
	dir := t.TempDir()
	store := filepath.Join(dir, "archive")
	// Times near now, so that the drawing (which ends now) shows them.
	t0 := time.Now().UTC().Add(-14 * time.Hour).Truncate(time.Hour)
	tl1, tl2, snap1, snap2 := statusArchive(t, store, t0)
	stamp := func(d time.Duration) string { return t0.Add(d).Format(time.RFC3339) }
	page := filepath.Join(dir, "status.html")
	outb, err := exec.Command(binarcPath, "ls", "--store", store, "--cluster", "main", "--html", page).CombinedOutput()
	out := string(outb)
	if err != nil {
		t.Fatalf("binarc ls --html: %v\n%s", err, out)
	}
	if !strings.Contains(out, "GAP") || !strings.Contains(out, "join "+tl1+" → "+tl2) {
		t.Fatalf("the text status lacks the gap or the join:\n%s", out)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	shot := filepath.Join(dir, "status.png")
	cmd := exec.CommandContext(ctx, chromium, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0",
		"--window-size=1280,1100", "--screenshot="+shot, "--dump-dom", "file://"+page)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	dom, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium: %v\n%s", err, stderr.String())
	}
	if m := regexp.MustCompile(`(?m)^.*:CONSOLE.*$`).FindString(stderr.String()); m != "" {
		t.Errorf("chromium's console: %s", m)
	}
	for _, want := range []string{
		`class="timeline" data-name="` + tl1 + `" data-from="` + stamp(0) + `" data-to="` + stamp(5*time.Hour) + `"`,
		`class="timeline" data-name="` + tl2 + `" data-from="` + stamp(10*time.Hour) + `" data-to="` + stamp(13*time.Hour) + `"`,
		`class="join" data-timeline="` + tl2 + `" data-previous="` + tl1 + `" data-time="` + stamp(10*time.Hour) + `"`,
		`class="snapshot" data-id="` + snap1 + `" data-time="` + stamp(90*time.Minute) + `"`,
		`class="snapshot" data-id="` + snap2 + `" data-time="` + stamp(10*time.Hour+30*time.Minute) + `"`,
		`class="gap" data-timeline="` + tl2 + `" data-file="mysql-bin.000001" data-time="` + stamp(10*time.Hour) + `"`,
		`class="window cut"`, // the window across the join, cut short by the gap
	} {
		if !strings.Contains(string(dom), want) {
			t.Errorf("the rendered DOM lacks %s\n(binarc ls said:\n%s)", want, out)
		}
	}
	if st, err := os.Stat(shot); err != nil || st.Size() < 10_000 {
		t.Errorf("no screenshot of the page: %v", err)
	}
	if to := os.Getenv("BINARC_STATUS_SCREENSHOT"); to != "" {
		data, _ := os.ReadFile(shot)
		_ = os.WriteFile(to, data, 0o644)
	}
}
