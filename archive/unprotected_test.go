package archive

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/binarc/binarc/archive/objstore"
)

func FuzzUnprotectedName(f *testing.F) {
	f.Add("mysql-bin.000001", uint64(4), false)
	f.Add("a@b.000009", uint64(1)<<63, true)
	f.Fuzz(func(t *testing.T, file string, offset uint64, closed bool) {
		if file == "" || strings.ContainsAny(file, "/") {
			return
		}
		name := FormatUnprotectedName(file, offset, closed)
		gf, goff, gc, err := ParseUnprotectedName(name)
		if err != nil || gf != file || goff != offset || gc != closed {
			t.Fatalf("%q: got %q %d %v %v", name, gf, goff, gc, err)
		}
	})
}

func TestUnprotectedRecords(t *testing.T) {
	ctx := context.Background()
	store := objstore.NewMemory()
	l := Layout{Cluster: "c"}
	t0 := time.Date(2026, 12, 6, 16, 0, 0, 0, time.UTC)
	first := &Unprotected{Timeline: "tl", FromFile: "mysql-bin.000002", FromOffset: 1000, FromTime: t0, Reason: "timeout"}
	second := &Unprotected{Timeline: "tl", FromFile: "mysql-bin.000003", FromOffset: 50, FromTime: t0.Add(time.Hour), Reason: "off"}
	for _, u := range []*Unprotected{first, second} {
		if err := PutUnprotected(ctx, store, l, u); err != nil {
			t.Fatal(err)
		}
	}
	closed := *first
	closed.ToFile, closed.ToOffset, closed.ToTime = "mysql-bin.000002", 9000, t0.Add(time.Minute)
	if err := PutUnprotected(ctx, store, l, &closed); err != nil {
		t.Fatal(err)
	}
	if err := PutUnprotected(ctx, store, l, &closed); err != nil {
		t.Fatalf("recording the same range again: %v", err)
	}
	got, err := ReadUnprotected(ctx, store, l, "tl")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Open() || got[0].ToOffset != 9000 || !got[1].Open() || got[1].FromFile != "mysql-bin.000003" {
		t.Fatalf("read back %+v %+v; want the first closed at 9000, the second open", got[0], got[1])
	}
	// A record whose content disagrees with its name is refused by key.
	bad := l.UnprotectedKey("tl", "mysql-bin.000004", 4, false)
	if _, err := store.Put(ctx, bad, MarshalJSON(first), objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadUnprotected(ctx, store, l, "tl"); !errors.Is(err, errBadUnprotected) || !strings.Contains(err.Error(), bad) {
		t.Fatalf("tampered record: %v", err)
	}
	// One larger than any binarc writes is not read whole.
	big := l.UnprotectedKey("tl2", "mysql-bin.000001", 4, false)
	if _, err := store.Put(ctx, big, make([]byte, maxUnprotectedBytes+1), objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadUnprotected(ctx, store, l, "tl2"); !errors.Is(err, objstore.ErrTooLarge) {
		t.Fatalf("oversized record: %v", err)
	}
}
