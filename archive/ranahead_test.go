package archive

import (
	"errors"
	"testing"
)

func TestTailRanAhead(t *testing.T) {
	gap := errors.New("bytes [10,20) are not stored")
	mid := &FileState{File: "mysql-bin.000001", Gap: gap}
	last := &FileState{File: "mysql-bin.000002", Gap: gap, Size: 10}
	ts := &TimelineState{Files: []*FileState{mid, last}}
	tailRanAhead(ts)
	if mid.Gap == nil {
		t.Fatal("a hole in a file before the last was cleared: a restore would cross it")
	}
	if last.Gap != nil || last.RanAhead != gap {
		t.Fatalf("last unfinished file: Gap %v, RanAhead %v; want the hole as RanAhead", last.Gap, last.RanAhead)
	}
	done := &FileState{File: "mysql-bin.000003", Gap: gap, Complete: true}
	ts = &TimelineState{Files: []*FileState{done}}
	tailRanAhead(ts)
	if done.Gap == nil {
		t.Fatal("a hole in a complete (indexed) file was cleared")
	}
}
