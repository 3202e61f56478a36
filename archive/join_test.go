package archive

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/binarc/binarc/archive/objstore"
	"github.com/binarc/binarc/replication"
)

// TestReadJoinBounded: join.json is read like every other small object,
// bounded (a huge object is refused, not read into memory) and a record
// that does not parse names the object and why.
func TestReadJoinBounded(t *testing.T) {
	ctx := context.Background()
	mem := objstore.NewMemory()
	c := Catalog{Store: mem, Layout: Layout{Cluster: "c"}}
	const tl = "000002-20260101T000000Z"
	key := c.Layout.JoinKey(tl)
	huge := append(append([]byte(`{"version":1,"timeline":"`), bytes.Repeat([]byte("x"), objstore.MaxSmallObject)...), `"}`...)
	if _, err := mem.Put(ctx, key, huge, objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadJoin(ctx, c, tl); err == nil || !strings.Contains(err.Error(), key) {
		t.Fatalf("a join record over the small-object bound: %v, want refused naming %s", err, key)
	}
	if _, err := mem.Put(ctx, key, []byte(`{"version":`), objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err := ReadJoin(ctx, c, tl)
	if err == nil || !strings.Contains(err.Error(), key) || !strings.Contains(err.Error(), "unexpected end of JSON") {
		t.Fatalf("a truncated join record: %v, want the object and the parse error", err)
	}
}

// TestDescribeSkipsATimelineBeingCreated: the newest timeline listed
// before its timeline.json reads (versitygw's posix backend lists an
// object's folder while the object is being written; TestObjectLock met
// it) is left out, not an error; an older one without it still is.
func TestDescribeSkipsATimelineBeingCreated(t *testing.T) {
	ctx := context.Background()
	specs := [][]fileSpec{{{name: "a-bin.000001", txs: "0-1-1@100"}}}
	c, names, _ := joinTimelines(t, specs, []int{0})
	creating := FormatTimeline(2, joinAt(200))
	if _, err := c.Store.Put(ctx, c.Layout.SegmentKey(creating, "b-bin.000001", 0, 10), []byte("x"), objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	tls, err := c.Describe(ctx)
	if err != nil || len(tls) != 1 || tls[0].Name != names[0] {
		t.Fatalf("Describe: %v, %v; want only %s", tls, err, names[0])
	}
	if err := c.Store.Delete(ctx, c.Layout.TimelineKey(names[0])); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Describe(ctx); err == nil {
		t.Fatal("an older timeline without its timeline.json: no error")
	}
}

// TestHeldState: what the archive's history holds at a timeline's end is
// its end state with the states its recorded joins met, back along them;
// a broken join ends the walk, and the end state is not changed.
func TestHeldState(t *testing.T) {
	ctx := context.Background()
	const tl1, tl2, tl3 = "000001-20261125T000000Z", "000002-20261125T000100Z", "000003-20261125T000200Z"
	end, err := replication.ParseGTIDState("0-41-69787,0-52-69781")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		joins []Join
		want  string
	}{
		{"two recorded joins", []Join{{Timeline: tl2, Previous: tl1, Meet: "0-1-3594,0-11-36487,0-41-69297"}, {Timeline: tl3, Previous: tl2, Meet: "0-41-69300,0-52-69310"}},
			"0-1-3594,0-11-36487,0-41-69787,0-52-69781"},
		{"a broken join ends the walk", []Join{{Timeline: tl2, Previous: tl1, Meet: "0-1-3594"}, {Timeline: tl3, Previous: tl2, Broken: "a gap"}},
			"0-41-69787,0-52-69781"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cat := Catalog{Store: objstore.NewMemory(), Layout: Layout{Cluster: "c"}}
			for _, j := range c.joins {
				j.Version = 1
				if err := cat.PutOnce(ctx, cat.Layout.JoinKey(j.Timeline), MarshalJSON(&j)); err != nil {
					t.Fatal(err)
				}
			}
			if held := cat.HeldState(ctx, tl3, end); held.String() != c.want {
				t.Fatalf("held %s, want %s", held, c.want)
			}
			if end.String() != "0-41-69787,0-52-69781" {
				t.Fatalf("HeldState changed the end state: %s", end)
			}
		})
	}
}
