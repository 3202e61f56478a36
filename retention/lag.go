package retention

import (
	"context"
	"fmt"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/replication"
)

// Lag compares the archive's end with the primary's position (binarc ls
// --source).
type Lag struct {
	PrimaryFile   string `json:"primary_file,omitempty"`
	PrimaryOffset uint64 `json:"primary_offset,omitempty"`
	BytesBehind   uint64 `json:"bytes_behind"`
	Summary       string `json:"summary"`
}

// MeasureLag asks the primary for its binary logs and says how far the
// timeline ts is behind it; a primary that cannot be asked gives a Lag
// whose Summary says why.
func MeasureLag(ctx context.Context, cfg replication.Config, ts *archive.TimelineState) *Lag {
	logs, err := cfg.BinaryLogs(ctx)
	if err != nil {
		return &Lag{Summary: "cannot tell: " + err.Error()}
	}
	if len(logs) == 0 || len(ts.Files) == 0 {
		return &Lag{Summary: "cannot tell: nothing to compare"}
	}
	last := ts.Files[len(ts.Files)-1]
	cur := logs[len(logs)-1]
	r := &Lag{PrimaryFile: cur.Name, PrimaryOffset: cur.Size}
	var behind uint64
	counting := false
	for _, l := range logs {
		switch {
		case l.Name == last.File:
			counting = true
			if l.Size > last.Size {
				behind += l.Size - last.Size
			}
		case counting:
			behind += l.Size
		}
	}
	if !counting {
		r.Summary = fmt.Sprintf("cannot tell: the primary (at %s:%d) no longer lists %s, the archive's last file", cur.Name, cur.Size, last.File)
		return r
	}
	r.BytesBehind = behind
	if behind == 0 {
		r.Summary = fmt.Sprintf("archive is up to date with the primary (%s:%d)", cur.Name, cur.Size)
	} else {
		r.Summary = fmt.Sprintf("archive is %d bytes behind the primary (%s:%d); the archive ends at %s:%d", behind, cur.Name, cur.Size, last.File, last.Size)
	}
	return r
}
