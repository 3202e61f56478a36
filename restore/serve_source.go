package restore

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/binarc/binarc/replication"
	"github.com/binarc/binarc/serve"
)

// rangeSource is what the private serve of a restore streams: the ranges
// of a plan on one timeline, from the rebuilt files (a serve.DirSource).
// The transactions cut out of the ranges (skipped with --skip-gtid, or
// already applied after a join) are left out by position, so a GTID that
// occurs on two timelines is left out only where the plan says.
type rangeSource struct {
	dir   serve.DirSource
	files []rangeFile
}

type rangeFile struct {
	name   string
	ranges []ReplayRange // of this file, in order
}

var _ serve.Source = (*rangeSource)(nil)

// newRangeSource serves rs, which must all be on one timeline (its files
// in one directory).
func newRangeSource(rs []ReplayRange) *rangeSource {
	s := &rangeSource{dir: serve.DirSource{Dir: filepath.Dir(rs[0].Path)}}
	for _, r := range rs {
		if n := len(s.files); n == 0 || s.files[n-1].name != r.File {
			s.files = append(s.files, rangeFile{name: r.File})
		}
		f := &s.files[len(s.files)-1]
		f.ranges = append(f.ranges, r)
	}
	return s
}

// Files lists the files, each ending where its last range does.
func (s *rangeSource) Files(context.Context) ([]serve.File, error) {
	out := make([]serve.File, 0, len(s.files))
	for _, f := range s.files {
		out = append(out, serve.File{Name: f.name, Size: f.ranges[len(f.ranges)-1].Stop, Complete: true})
	}
	return out, nil
}

// Read hands on the events of f from offset from to f.Size, except those
// between two of its ranges.
func (s *rangeSource) Read(ctx context.Context, f serve.File, from uint64, fn func(uint64, replication.Header, []byte) error) error {
	var rf *rangeFile
	for i := range s.files {
		if s.files[i].name == f.Name {
			rf = &s.files[i]
		}
	}
	if rf == nil {
		return fmt.Errorf("binlog=%s: not in the restore's plan", f.Name)
	}
	next := 0 // the range at or after the current event
	return s.dir.Read(ctx, f, from, func(off uint64, h replication.Header, raw []byte) error {
		for next < len(rf.ranges) && off >= rf.ranges[next].Stop {
			next++
		}
		if next > 0 && next < len(rf.ranges) && off < rf.ranges[next].Start {
			return nil // between two ranges: a transaction cut out
		}
		return fn(off, h, raw)
	})
}

// byTimeline splits ranges into runs on one timeline, in plan order.
func byTimeline(rs []ReplayRange) [][]ReplayRange {
	var out [][]ReplayRange
	for i, r := range rs {
		if i == 0 || r.Timeline != rs[i-1].Timeline {
			out = append(out, nil)
		}
		out[len(out)-1] = append(out[len(out)-1], r)
	}
	return out
}
