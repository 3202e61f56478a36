package archive

import (
	"math"
	"sort"
	"testing"
	"time"
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
