package binlogtest

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"

	"github.com/binarc/binarc/replication"
)

// TestSplice cuts a transaction out of a file and puts it back in another
// place: each result parses, every event's end position and CRC32 are
// right, and Transactions finds the spans File recorded.
func TestSplice(t *testing.T) {
	ts := time.Unix(1_700_000_000, 0)
	f := NewFile("bin.000001", "0-1-1")
	for _, g := range []string{"0-1-2", "0-1-3", "0-1-4"} {
		f.Tx(g, ts)
	}
	plain := f.Bytes()
	spans, err := Transactions(plain)
	if err != nil || len(spans) != 3 {
		t.Fatalf("transactions: %v, %v", spans, err)
	}
	for i, g := range []string{"0-1-2", "0-1-3", "0-1-4"} {
		if spans[i] != (Span{f.Starts[g], f.Ends[g]}) {
			t.Fatalf("span %d: %v; File says [%d,%d)", i, spans[i], f.Starts[g], f.Ends[g])
		}
	}
	mid := spans[1]
	tx := append([]byte(nil), plain[mid.Start:mid.End]...)
	cut, err := Splice(plain, mid.Start, mid.End, nil)
	if err != nil {
		t.Fatal(err)
	}
	sound(t, cut)
	if got, _ := Transactions(cut); len(got) != 2 || uint64(len(cut)) != uint64(len(plain))-(mid.End-mid.Start) {
		t.Fatalf("after the cut: %v, %d bytes", got, len(cut))
	}
	// Put it back after the last transaction: the file's bytes differ
	// (positions), its transactions are the same three.
	end := uint64(len(cut))
	moved, err := Splice(cut, end, end, tx)
	if err != nil {
		t.Fatal(err)
	}
	sound(t, moved)
	if got, _ := Transactions(moved); len(got) != 3 || bytes.Equal(moved, plain) || len(moved) != len(plain) {
		t.Fatalf("after moving it: %v", got)
	}
	if _, err := Splice(plain, mid.Start+1, mid.End, nil); err == nil {
		t.Fatal("a splice not on event boundaries must fail")
	}
}

// sound checks every event's end position and checksum.
func sound(t *testing.T, file []byte) {
	t.Helper()
	err := replication.Events(file, 0, func(off uint64, _ replication.Header, raw []byte) error {
		if end := binary.LittleEndian.Uint32(raw[13:]); uint64(end) != off+uint64(len(raw)) {
			t.Errorf("event at %d says it ends at %d", off, end)
		}
		if !replication.HasChecksum(raw) {
			t.Errorf("event at %d: CRC32 wrong", off)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
