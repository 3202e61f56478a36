package serve

import (
	"context"
	"testing"
	"time"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/archive/archivetest"
	"github.com/binarc/binarc/archive/objstore"
	"github.com/binarc/binarc/internal/binlogtest"
	"github.com/binarc/binarc/replication"
)

// TestChainAcrossARejoin: a timeline that rejoins an older timeline's
// history is streamed after that older timeline, cut where they meet; the
// timeline between (which the new server never had) is not streamed at all
// — streaming it would send its copies of the shared transactions twice.
func TestChainAcrossARejoin(t *testing.T) {
	ctx := context.Background()
	cat := archive.Catalog{Store: objstore.NewMemory(), Layout: archive.Layout{Cluster: "c"}}
	t0 := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	specs := []struct {
		file  string
		gtids []string
		times []int
	}{
		{"a-bin.000001", []string{"0-1-1", "0-1-2", "0-1-3", "0-1-4"}, []int{100, 101, 102, 103}},
		{"b-bin.000001", []string{"0-1-1", "0-1-2", "0-1-3", "0-2-4"}, []int{100, 101, 102, 120}},
		{"c-bin.000001", []string{"0-1-1", "0-1-2", "0-3-3"}, []int{100, 101, 130}},
	}
	var names []string
	for i, s := range specs {
		f := binlogtest.NewFile(s.file)
		for k, g := range s.gtids {
			f.Tx(g, at(s.times[k]))
		}
		tl := archive.FormatTimeline(i+1, at(110*i))
		names = append(names, tl)
		if err := archivetest.PutTimeline(ctx, cat, archive.TimelineInfo{Timeline: tl, Created: at(110 * i), StartFile: s.file, SourceServerID: uint32(i + 1), Reason: "test"},
			map[string][]byte{s.file: f.Bytes()}, []string{s.file}); err != nil {
			t.Fatal(err)
		}
	}
	src := &ArchiveSource{Catalog: cat, Joins: func(ctx context.Context) ([]*Join, error) {
		js, err := archive.Joins(ctx, cat, t.TempDir())
		var out []*Join
		for _, j := range js {
			if j != nil {
				out = append(out, &Join{Timeline: j.Timeline, Previous: j.From(), Meet: j.Meet, Broken: j.Broken, Final: j.Final,
					PreviousEnd: j.PreviousEnd.Pos(), At: j.At.Pos()})
			}
		}
		return out, err
	}}
	files, err := src.chainFiles(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2 || files[0].Timeline != names[0] || files[1].Timeline != names[2] || files[1].StartState != "0-1-2" || files[0].Size >= files[1].Size {
		t.Fatalf("chain %+v: want timeline 1 cut after 0-1-2, then timeline 3 from there", files)
	}
	if files[1].Start <= replication.MagicLen || !files[0].Complete {
		t.Fatalf("chain %+v", files)
	}
}
