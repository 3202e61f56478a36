package archive

import (
	"context"
	"math"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/binarc/binarc/archive/objstore"
)

func TestSegmentNameRoundTrip(t *testing.T) {
	cases := [][2]uint64{
		{0, 4096},
		{4096, 16 << 20},
		{1<<32 - 10, 1<<32 + 5000}, // crosses 4 GiB: binlog files can
		{1 << 40, 1<<40 + 1},
		{math.MaxUint64 - 1, math.MaxUint64},
	}
	for _, c := range cases {
		name := FormatSegmentName(c[0], c[1])
		s, e, err := ParseSegmentName(name)
		if err != nil || s != c[0] || e != c[1] {
			t.Fatalf("%v -> %q -> %d,%d,%v", c, name, s, e, err)
		}
		key := Layout{Cluster: "c"}.SegmentKey("000001-20260101T000000Z", "mysql-bin.000001", c[0], c[1])
		if s, e, err := ParseSegmentName(key); err != nil || s != c[0] || e != c[1] {
			t.Fatalf("key %q: %d,%d,%v", key, s, e, err)
		}
	}
}

func TestSegmentNamesSortByOffset(t *testing.T) {
	offs := []uint64{0, 9, 10, 99, 4 << 30, 5 << 30, 1 << 33}
	var names []string
	for i := len(offs) - 2; i >= 0; i-- {
		names = append(names, FormatSegmentName(offs[i], offs[i+1]))
	}
	sort.Strings(names)
	for i, n := range names {
		s, _, _ := ParseSegmentName(n)
		if s != offs[i] {
			t.Fatalf("sorted names out of offset order: %v", names)
		}
	}
}

func TestParseSegmentNameRejects(t *testing.T) {
	for _, bad := range []string{
		"", "x.zst", "00000000000000000004-00000000000000000004.zst", // empty range
		"00000000000000000010-00000000000000000004.zst", // backwards
		"0000000000000000004-00000000000000000010.zst",  // short
		"00000000000000000004-00000000000000000010.zstd",
		"0000000000000000000a-00000000000000000010.zst",
		"99999999999999999999-99999999999999999999.zst", // overflows uint64
	} {
		if _, _, err := ParseSegmentName(bad); err == nil {
			t.Errorf("ParseSegmentName(%q) accepted", bad)
		}
	}
}

func TestTimelineRoundTrip(t *testing.T) {
	at := time.Date(2026, 11, 25, 3, 7, 9, 0, time.UTC)
	name := FormatTimeline(12, at)
	if name != "000012-20261125T030709Z" {
		t.Fatalf("name %q", name)
	}
	seq, got, err := ParseTimeline(name)
	if err != nil || seq != 12 || !got.Equal(at) {
		t.Fatalf("parse: %d %v %v", seq, got, err)
	}
	if _, _, err := ParseTimeline("12-x"); err == nil {
		t.Fatal("accepted a bad timeline")
	}
}

func TestValidateName(t *testing.T) {
	for _, ok := range []string{"main", "users-01", "mysql-bin.000001"} {
		if err := ValidateName("cluster", ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "a/b", ".hidden", "..", "a\nb"} {
		if err := ValidateName("cluster", bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func FuzzSegmentName(f *testing.F) {
	f.Add(uint64(0), uint64(4))
	f.Add(uint64(1<<32), uint64(1<<33))
	f.Fuzz(func(t *testing.T, start, end uint64) {
		if end <= start {
			return
		}
		s, e, err := ParseSegmentName(FormatSegmentName(start, end))
		if err != nil || s != start || e != end {
			t.Fatalf("%d-%d: %d %d %v", start, end, s, e, err)
		}
	})
}

func TestSnapshotIDRoundTrip(t *testing.T) {
	at := time.Date(2026, 11, 25, 3, 15, 0, 0, time.FixedZone("CET", 3600))
	id := FormatSnapshotID(at, "physical")
	if id != "20261125T021500Z-physical" {
		t.Fatalf("id %q", id)
	}
	got, method, err := ParseSnapshotID(id + "/")
	if err != nil || !got.Equal(at) || method != "physical" {
		t.Fatalf("parse %q: %v %q %v", id, got, method, err)
	}
	for _, bad := range []string{"", "20261125T021500Z", "20261125T021500Z-", "2026-11-25-physical", "20261125T021500Z-a-b", "x-physical"} {
		if _, _, err := ParseSnapshotID(bad); err == nil {
			t.Errorf("ParseSnapshotID(%q) accepted", bad)
		}
	}
}

func TestSnapshotIDsSortByTime(t *testing.T) {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var ids []string
	for _, d := range []time.Duration{48 * time.Hour, time.Second, 0, 300 * 24 * time.Hour} {
		ids = append(ids, FormatSnapshotID(base.Add(d), "logical"))
	}
	sort.Strings(ids)
	var prev time.Time
	for _, id := range ids {
		at, _, _ := ParseSnapshotID(id)
		if at.Before(prev) {
			t.Fatalf("sorted ids out of time order: %v", ids)
		}
		prev = at
	}
}

func TestSnapshotKeys(t *testing.T) {
	l := Layout{Cluster: "main"}
	id := "20261125T031500Z-physical"
	for got, want := range map[string]string{
		l.SnapshotLeaseKey():                        "main/snapshot.lease.json",
		l.SnapshotsPrefix():                         "main/snapshot/",
		l.SnapshotManifestKey(id):                   "main/snapshot/20261125T031500Z-physical/manifest.json",
		l.SnapshotDataKey(id, SnapshotDataPhysical): "main/snapshot/20261125T031500Z-physical/backup.xbstream.zst",
		l.SnapshotDataKey(id, SnapshotDataLogical):  "main/snapshot/20261125T031500Z-physical/dump.sql.zst",
	} {
		if got != want {
			t.Errorf("key %q, want %q", got, want)
		}
	}
}

func FuzzSnapshotID(f *testing.F) {
	f.Add(int64(0), "physical")
	f.Add(int64(1796000000), "logical")
	f.Fuzz(func(t *testing.T, sec int64, method string) {
		if sec < 0 || sec > 253402300799 || ValidateName("m", method) != nil || strings.Contains(method, "-") {
			return
		}
		at := time.Unix(sec, 0)
		got, m, err := ParseSnapshotID(FormatSnapshotID(at, method))
		if err != nil || !got.Equal(at) || m != method {
			t.Fatalf("%v %q: %v %q %v", at, method, got, m, err)
		}
	})
}

func TestCheckLayoutVersion(t *testing.T) {
	ctx := context.Background()
	s := objstore.NewMemory()
	c := Catalog{Store: s, Layout: Layout{Cluster: "c"}}
	if err := c.CheckLayoutVersion(ctx); err != nil {
		t.Fatalf("no archive yet: %v", err)
	}
	for v, ok := range map[int]bool{LayoutVersion: true, LayoutVersion + 1: false} {
		if _, err := s.Put(ctx, c.Layout.LayoutKey(), MarshalJSON(LayoutInfo{Version: v}), objstore.PutOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := c.CheckLayoutVersion(ctx); (err == nil) != ok {
			t.Errorf("version %d: %v", v, err)
		}
	}
}

func TestDrillNameRoundTrip(t *testing.T) {
	at := time.Date(2026, 12, 6, 16, 5, 7, 0, time.UTC)
	l := Layout{Cluster: "main"}
	key := l.DrillKey(at)
	if key != "main/drill/20261206T160507Z.json" {
		t.Fatalf("DrillKey = %q", key)
	}
	got, err := ParseDrillName(key)
	if err != nil || !got.Equal(at) {
		t.Fatalf("ParseDrillName(%q) = %v, %v", key, got, err)
	}
	for _, bad := range []string{"main/drill/x.json", "20261206T160507Z", "20261206T160507Z.json.tmp"} {
		if _, err := ParseDrillName(bad); err == nil {
			t.Errorf("ParseDrillName(%q) accepted it", bad)
		}
	}
}
