package stream

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/archive/archivetest"
	"github.com/binarc/binarc/archive/objstore"
	"github.com/binarc/binarc/internal/binlogtest"
	"github.com/binarc/binarc/replication"
)

// TestDumpStarts: after the archived end state, a new primary is asked
// for the states at the start of the timeline's last files, newest first,
// each once, at most maxDumpStarts of them.
func TestDumpStarts(t *testing.T) {
	ctx := context.Background()
	c := archive.Catalog{Store: objstore.NewMemory(), Layout: archive.Layout{Cluster: "c"}}
	const tl = "000001-20261125T000000Z"
	at := time.Date(2026, 11, 25, 0, 0, 1, 0, time.UTC)
	// Files 1..5 start at 0-1-1, 0-1-2, 0-1-3, 0-1-3 (3 is empty) and 0-1-4.
	specs := []struct{ start, tx string }{{"0-1-1", "0-1-2"}, {"0-1-2", "0-1-3"}, {"0-1-3", ""}, {"0-1-3", "0-1-4"}, {"0-1-4", "0-1-5"}}
	files, order := map[string][]byte{}, []string{}
	for i, sp := range specs {
		name := fmt.Sprintf("mysql-bin.%06d", i+1)
		f := binlogtest.NewFile(name, sp.start)
		if sp.tx != "" {
			f.Tx(sp.tx, at)
		}
		files[name], order = f.Bytes(), append(order, name)
	}
	info := archive.TimelineInfo{Timeline: tl, StartFile: order[0], SourceServerID: 1, Reason: "new archive"}
	if err := archivetest.PutTimeline(ctx, c, info, files, order); err != nil {
		t.Fatal(err)
	}
	end, ok, err := endState(ctx, c, tl)
	if err != nil || !ok {
		t.Fatalf("end state: %v %v", ok, err)
	}
	var got []string
	for _, st := range dumpStarts(ctx, c, tl, end, end.Contains) {
		got = append(got, st.String())
	}
	// The end state, then the starts of files 5 and 4; file 3 starts
	// where 4 does (asked once); file 2 is past the bound.
	if want := "0-1-5 0-1-4 0-1-3"; strings.Join(got, " ") != want {
		t.Fatalf("dump starts %v, want %s", got, want)
	}
}

// TestNewestHeld: the newest binlog of a server that kept older servers'
// entries in its Gtid_lists is taken as held when judged by what the
// history holds (archive.Catalog.HeldState), not by the end state alone,
// which an archive of a restored server leaves without them (the 60-minute
// run of 2026-12-07: binarc started at the server's first binlog and
// archived its whole copied history again).
func TestNewestHeld(t *testing.T) {
	parse := func(s string) *replication.GTIDState {
		t.Helper()
		st, err := replication.ParseGTIDState(s)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	end := parse("0-41-69787,0-52-69781")
	held := parse("0-1-3594,0-11-36487,0-41-69787,0-52-69781")
	// A rebuilt server's binlogs: its first starts empty, its last lists
	// every server it has seen; one lists a transaction never archived.
	names := []string{"mysql-bin.000001", "mysql-bin.000109", "mysql-bin.000110"}
	states := map[string]*replication.GTIDState{
		"mysql-bin.000001": parse(""),
		"mysql-bin.000109": parse("0-1-3594,0-11-36487,0-41-69700,0-52-69700"),
		"mysql-bin.000110": parse("0-1-3594,0-11-36490,0-41-69780,0-52-69781"),
	}
	if got, _ := newestHeld(names, states, end.Contains); got != "mysql-bin.000001" {
		t.Fatalf("by the end state alone: %s (the behaviour this replaces starts at the first file)", got)
	}
	if got, _ := newestHeld(names, states, held.Contains); got != "mysql-bin.000109" {
		t.Fatalf("by what the history holds: %s, want mysql-bin.000109 (000110 lists 0-11-36490, never archived)", got)
	}
}
