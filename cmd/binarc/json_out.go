package main

import (
	"encoding/json"
	"io"
	"time"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/replication"
	"github.com/binarc/binarc/restore"
)

// The JSON that binarc restore --json and binarc binlog events --json
// print, for automation. The schemas are documented in the README
// ("Automation: JSON output"); a field is never renamed or removed within
// a version, and "version" changes when one is.
const jsonOutputVersion = 1

// transactionJSON is one transaction of the archive.
type transactionJSON struct {
	Time     time.Time `json:"time"`
	GTID     string    `json:"gtid,omitempty"`
	Timeline string    `json:"timeline,omitempty"`
	File     string    `json:"file"`
	Start    uint64    `json:"start"`
	End      uint64    `json:"end"`
	Summary  string    `json:"summary"`
}

func txJSON(t *archive.Transaction) *transactionJSON {
	if t == nil {
		return nil
	}
	return &transactionJSON{Time: t.Time.UTC(), GTID: t.GTID, Timeline: t.Timeline, File: t.File, Start: t.Start, End: t.End, Summary: t.Summary()}
}

type positionJSON struct {
	Timeline string `json:"timeline,omitempty"`
	File     string `json:"file"`
	Offset   uint64 `json:"offset"`
}

func posJSON(tl string, p replication.Position) positionJSON {
	return positionJSON{Timeline: tl, File: p.File, Offset: p.Offset}
}

type snapshotJSON struct {
	ID          string    `json:"id"`
	Method      string    `json:"method"`
	Taken       time.Time `json:"taken"`
	StoredBytes int64     `json:"stored_bytes"`
	File        string    `json:"file"`
	Pos         uint64    `json:"pos"`
	GTIDSet     string    `json:"gtid_set,omitempty"`
}

type rangeJSON struct {
	Timeline string `json:"timeline"`
	File     string `json:"file"`
	Start    uint64 `json:"start"`
	Stop     uint64 `json:"stop"`
}

type stepJSON struct {
	Timeline string       `json:"timeline"`
	From     positionJSON `json:"from"`
	To       positionJSON `json:"to"`
}

// restorePlanJSON is a restore's plan (binarc restore --json).
type restorePlanJSON struct {
	Version      int                `json:"version"`
	DryRun       bool               `json:"dry_run"`
	Snapshot     *snapshotJSON      `json:"snapshot"`
	Target       string             `json:"target"`
	From         positionJSON       `json:"from"`
	Stop         positionJSON       `json:"stop"`
	Chain        []stepJSON         `json:"chain"`
	Joins        []*archive.Join    `json:"joins"`
	FetchFiles   int                `json:"fetch_files"`
	StoredBytes  int64              `json:"fetch_stored_bytes"`
	ReplayBytes  uint64             `json:"replay_bytes"`
	Ranges       []rangeJSON        `json:"ranges"`
	Skipped      []*transactionJSON `json:"skipped"`
	LastApplied  *transactionJSON   `json:"last_applied"`
	AlreadyThere bool               `json:"already_there"`
}

func planJSON(rp *restore.RestorePlan, dryRun bool) restorePlanJSON {
	p := rp.Binlog
	out := restorePlanJSON{Version: jsonOutputVersion, DryRun: dryRun, Target: p.Target.String(),
		From: posJSON(p.FromTimeline, p.From), Stop: posJSON(p.Timeline, p.Stop), Joins: p.Joins,
		FetchFiles: len(p.Files), StoredBytes: p.StoredBytes, ReplayBytes: p.ReplayBytes,
		LastApplied: txJSON(p.Last), AlreadyThere: p.Last == nil,
		Chain: []stepJSON{}, Ranges: []rangeJSON{}, Skipped: []*transactionJSON{}}
	if out.Joins == nil {
		out.Joins = []*archive.Join{}
	}
	if m := rp.Snapshot; m != nil {
		out.Snapshot = &snapshotJSON{ID: m.ID, Method: string(m.Method), Taken: m.Started.UTC(), StoredBytes: m.StoredSize,
			File: m.Coordinates.File, Pos: m.Coordinates.Pos, GTIDSet: m.Coordinates.GTIDSet}
	}
	for _, st := range p.Steps {
		out.Chain = append(out.Chain, stepJSON{Timeline: st.Timeline, From: posJSON(st.Timeline, st.From), To: posJSON(st.Timeline, st.To)})
	}
	for _, r := range p.Ranges {
		out.Ranges = append(out.Ranges, rangeJSON{Timeline: r.Timeline, File: r.File, Start: r.Start, Stop: r.Stop})
	}
	for _, s := range p.Skipped {
		out.Skipped = append(out.Skipped, txJSON(s))
	}
	return out
}

// writeJSON writes v as one line of JSON.
func writeJSON(w io.Writer, v any) error {
	return json.NewEncoder(w).Encode(v)
}
