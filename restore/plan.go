package restore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/replication"
)

// PlanRequest asks for the binlog part of a restore.
type PlanRequest struct {
	// Timeline to replay from; empty means the newest one holding From.File.
	Timeline string
	// From is where the restored data stands: a snapshot's coordinates.
	From   replication.Position
	Target Target
	// Skip lists GTIDs of transactions to leave out.
	Skip []string
	// WorkDir receives the rebuilt binlog files the replay reads.
	WorkDir string
}

// ReplayRange is a byte range [Start, Stop) of one rebuilt file, cut at
// transaction boundaries.
type ReplayRange struct {
	File        string
	Path        string
	Start, Stop uint64
}

// Plan is the binlog part of a restore: what to fetch and what to replay.
type Plan struct {
	Timeline string
	From     replication.Position
	Target   Target
	// Stop is where replay ends: everything before it is applied.
	Stop    replication.Position
	Ranges  []ReplayRange
	Skipped []*Transaction
	// Last is the last transaction applied, if any.
	Last        *Transaction
	Files       []*archive.FileState
	StoredBytes int64  // compressed bytes fetched
	ReplayBytes uint64 // binlog bytes replayed
}

// ErrOutsideWindow means the target is not restorable from the archive.
var ErrOutsideWindow = errors.New("restore target outside the restorable window")

// PlanBinlog fetches the archived binlog from req.From onwards into req.WorkDir,
// file by file, until it finds the target, and returns the ranges to
// replay. Every segment it needs is downloaded and checked (zstd checksum,
// contiguity) before anything is replayed.
func PlanBinlog(ctx context.Context, c archive.Catalog, req PlanRequest) (*Plan, error) {
	tl, files, err := timelineFor(ctx, c, req.Timeline, req.From.File)
	if err != nil {
		return nil, err
	}
	p := &Plan{Timeline: tl.Name, From: req.From, Target: req.Target}
	skip := map[string]*Transaction{}
	for _, g := range req.Skip {
		if !IsGTID(g) {
			return nil, fmt.Errorf("--skip-gtid %q is not a GTID (0-1-2345 or uuid:n)", g)
		}
		skip[g] = nil
	}
	found := false
	var lastTime time.Time
	for i, fs := range files {
		if fs.Gap != nil {
			return nil, fmt.Errorf("%w: %v\n%s", ErrOutsideWindow, fs.Gap, DescribeWindow(tl))
		}
		path := filepath.Join(req.WorkDir, fs.File)
		if err := rebuildTo(ctx, c, fs, path); err != nil {
			return nil, err
		}
		p.Files = append(p.Files, fs)
		for _, s := range fs.Segments {
			p.StoredBytes += s.StoredSize
		}
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		from := uint64(0)
		if i == 0 {
			from = req.From.Offset
			if from > fs.Size {
				f.Close()
				return nil, fmt.Errorf("%w: %s is past the end of the archived %s (%d bytes)\n%s", ErrOutsideWindow, req.From, fs.File, fs.Size, DescribeWindow(tl))
			}
		}
		err = scanFile(fs.File, f, from, func(t *Transaction) (bool, error) {
			if t.Time.After(lastTime) {
				lastTime = t.Time
			}
			switch req.Target.Kind {
			case TargetTime:
				if !t.Time.Before(req.Target.Time) {
					p.Stop, found = replication.Position{File: fs.File, Offset: t.Start}, true
					return false, nil
				}
			case TargetPosition:
				if fs.File == req.Target.Position.File {
					tp := req.Target.Position.Offset
					if t.Start == tp {
						p.Stop, found = req.Target.Position, true
						return false, nil
					}
					if t.Start < tp && tp < t.End {
						return false, fmt.Errorf("--to %s is inside a transaction (%s:%d-%d, GTID %s): use its start or its end", req.Target.Position, fs.File, t.Start, t.End, t.GTID)
					}
				}
			}
			if _, ok := skip[t.GTID]; ok && t.GTID != "" {
				skip[t.GTID] = t
				p.Skipped = append(p.Skipped, t)
			} else {
				p.Last = t
			}
			if req.Target.Kind == TargetGTID && t.GTID == req.Target.GTID {
				p.Stop, found = replication.Position{File: fs.File, Offset: t.End}, true
				return false, nil
			}
			if req.Target.Kind == TargetPosition && fs.File == req.Target.Position.File && t.End == req.Target.Position.Offset {
				p.Stop, found = req.Target.Position, true
				return false, nil
			}
			return true, nil
		})
		f.Close()
		if err != nil {
			return nil, err
		}
		if found {
			break
		}
		// Replay can run to the end of every transaction seen so far.
		end := uint64(0)
		if p.Last != nil && p.Last.File == fs.File {
			end = p.Last.End
		}
		if n := len(p.Skipped); n > 0 && p.Skipped[n-1].File == fs.File && p.Skipped[n-1].End > end {
			end = p.Skipped[n-1].End
		}
		if end > 0 {
			p.Stop = replication.Position{File: fs.File, Offset: end}
		}
	}
	if !found {
		switch req.Target.Kind {
		case TargetLatest:
			if p.Stop.File == "" {
				p.Stop = req.From
			}
		case TargetTime:
			return nil, fmt.Errorf("%w: %s is after the newest archived transaction (%s); to restore everything archived, use --to latest\n%s",
				ErrOutsideWindow, req.Target, lastTime.Format(time.RFC3339), DescribeWindow(tl))
		case TargetGTID:
			return nil, fmt.Errorf("%w: GTID %s is not in the archive after %s\n%s", ErrOutsideWindow, req.Target.GTID, req.From, DescribeWindow(tl))
		case TargetPosition:
			return nil, fmt.Errorf("%w: %s is not a transaction boundary in the archive after %s\n%s", ErrOutsideWindow, req.Target.Position, req.From, DescribeWindow(tl))
		}
	}
	for g, t := range skip {
		if t == nil {
			return nil, fmt.Errorf("--skip-gtid %s: no such transaction between %s and %s", g, req.From, p.Stop)
		}
	}
	p.Ranges = rangesBetween(p, req.WorkDir)
	for _, r := range p.Ranges {
		p.ReplayBytes += r.Stop - r.Start
	}
	return p, nil
}

// rangesBetween lists the byte ranges from p.From to p.Stop, leaving out
// the skipped transactions.
func rangesBetween(p *Plan, dir string) []ReplayRange {
	var out []ReplayRange
	add := func(file string, start, stop uint64) {
		start = max(start, replication.MagicLen)
		if stop > start {
			out = append(out, ReplayRange{File: file, Path: filepath.Join(dir, file), Start: start, Stop: stop})
		}
	}
	for _, fs := range p.Files {
		start, stop := uint64(0), fs.Size
		if fs.File == p.From.File {
			start = p.From.Offset
		}
		if fs.File == p.Stop.File {
			stop = p.Stop.Offset
		}
		for _, s := range p.Skipped {
			if s.File == fs.File {
				add(fs.File, start, s.Start)
				start = s.End
			}
		}
		add(fs.File, start, stop)
		if fs.File == p.Stop.File {
			break
		}
	}
	return out
}

// timelineFor finds the timeline holding file and its files from file on.
func timelineFor(ctx context.Context, c archive.Catalog, name, file string) (*archive.TimelineState, []*archive.FileState, error) {
	tls, err := c.Describe(ctx)
	if err != nil {
		return nil, nil, err
	}
	if len(tls) == 0 {
		return nil, nil, fmt.Errorf("cluster %q has no archived binlog", c.Layout.Cluster)
	}
	for i := len(tls) - 1; i >= 0; i-- {
		tl := tls[i]
		if name != "" && tl.Name != name {
			continue
		}
		for j, f := range tl.Files {
			if f.File == file {
				return tl, tl.Files[j:], nil
			}
		}
	}
	var b strings.Builder
	for _, tl := range tls {
		b.WriteString(DescribeWindow(tl) + "\n")
	}
	return nil, nil, fmt.Errorf("%w: binlog %s is not in the archive%s\n%s", ErrOutsideWindow, file, map[bool]string{true: " of timeline " + name, false: ""}[name != ""], strings.TrimSpace(b.String()))
}

// DescribeWindow says what a timeline covers, for error messages.
func DescribeWindow(tl *archive.TimelineState) string {
	if len(tl.Files) == 0 {
		return fmt.Sprintf("timeline %s holds no binlog yet", tl.Name)
	}
	first, last := tl.Files[0], tl.Files[len(tl.Files)-1]
	s := fmt.Sprintf("timeline %s covers %s:4 (%s) to %s:%d (%s)", tl.Name,
		first.File, first.FirstEventTime.Format(time.RFC3339), last.File, last.Size, last.LastEventTime.Format(time.RFC3339))
	for _, f := range tl.Files {
		if f.Gap != nil {
			s += "; gap: " + f.Gap.Error()
		}
	}
	return s
}

// rebuildTo writes the archived file to path (through a temporary file).
func rebuildTo(ctx context.Context, c archive.Catalog, fs *archive.FileState, path string) error {
	tmp := path + ".part"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = c.Rebuild(ctx, fs, f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("fetch %s: %w", fs.File, err)
	}
	return nil
}
