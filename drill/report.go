package drill

import (
	"encoding/json"
	"fmt"
	"time"
)

// RecordVersion is the version of the drill record this binarc writes.
const RecordVersion = 1

// Table statuses in a report.
const (
	Equal     = "equal"     // same checksum on the restore and the replica
	Different = "different" // a chunk, the row count or the table itself differs
	Skipped   = "skipped"   // not compared: Note says why
	Checked   = "checked"   // no replica: CHECK TABLE passed
)

// TableResult is one table's outcome.
type TableResult struct {
	Table  string `json:"table"`
	Status string `json:"status"`
	Rows   int64  `json:"rows"`
	Chunks int    `json:"chunks,omitempty"`
	Note   string `json:"note,omitempty"`
}

// Phase is how long one part of the drill took; the restore's download,
// prepare and binlog fetch overlap.
type Phase struct {
	Name    string  `json:"name"`
	Seconds float64 `json:"seconds"`
}

// Report is one drill's outcome, as printed and as stored (the drill
// record).
type Report struct {
	Version  int       `json:"version"`
	Cluster  string    `json:"cluster"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	// Mode is "replica" (compared with a paused replica) or "check" (no
	// replica: CHECK TABLE, row counts, the GTID position).
	Mode     string `json:"mode"`
	Replica  string `json:"replica,omitempty"`
	Snapshot string `json:"snapshot,omitempty"`
	Target   string `json:"target"`
	// StoppedAt is the binlog position the restore stopped at, GTID the
	// GTID position of the restored data there: the point compared.
	StoppedAt string `json:"stopped_at,omitempty"`
	GTID      string `json:"gtid,omitempty"`
	// RestoreSeconds is the time from the start to a restored, ready data
	// directory: what a real restore takes (the RTO).
	RestoreSeconds float64 `json:"restore_seconds"`
	Phases         []Phase `json:"phases"`
	ReplayedBytes  uint64  `json:"replayed_bytes"`
	FetchedBytes   int64   `json:"fetched_bytes"`
	Transactions   uint64  `json:"transactions"`
	// ReplicaPauseSeconds is how long the replica's SQL thread was held.
	ReplicaPauseSeconds float64           `json:"replica_pause_seconds,omitempty"`
	Tools               map[string]string `json:"tools,omitempty"`
	Tables              []TableResult     `json:"tables"`
	// Notes say what was not compared, and why.
	Notes []string `json:"notes,omitempty"`
	// Error is set when the drill failed before it could compare.
	Error string `json:"error,omitempty"`
}

// Count is how many tables have status s.
func (r *Report) Count(s string) int {
	n := 0
	for _, t := range r.Tables {
		if t.Status == s {
			n++
		}
	}
	return n
}

// Outcome is "failed", "different", "incomplete" (tables there, none
// compared: the notes say why), or "equal" (every compared table equal,
// or every checked table sound; the notes name those left out).
func (r *Report) Outcome() string {
	switch {
	case r.Error != "":
		return "failed"
	case r.Count(Different) > 0:
		return Different
	case len(r.Tables) > 0 && r.Count(Skipped) == len(r.Tables):
		return Incomplete
	}
	return Equal
}

// Incomplete is the outcome of a drill that restored but compared no
// table: no proof, so not a success.
const Incomplete = "incomplete"

// Succeeded tells whether the drill restored and found no difference.
func (r *Report) Succeeded() bool { return r.Outcome() == Equal }

// Summary is the one line binarc ls shows.
func (r *Report) Summary() string {
	rto := (time.Duration(r.RestoreSeconds*1000) * time.Millisecond).Round(time.Second)
	s := fmt.Sprintf("last drill: %s, %s", r.Started.UTC().Format("2006-01-02 15:04:05Z"), r.Outcome())
	switch r.Outcome() {
	case "failed":
		return s + ": " + firstLine(r.Error)
	case Different:
		s += fmt.Sprintf(" (%d of %d tables)", r.Count(Different), len(r.Tables))
	case Incomplete:
		s += " (no table compared)"
	default:
		s += fmt.Sprintf(" (%d tables, %s)", len(r.Tables)-r.Count(Skipped), r.Mode)
	}
	return s + ", RTO " + rto.String()
}

// maxTables bounds the tables a record may list, so a record read from
// the bucket cannot claim more than a real server holds.
const maxTables = 1 << 20

// UnmarshalReport reads a drill record and checks what a reader relies
// on: nothing read from the bucket is trusted.
func UnmarshalReport(b []byte) (*Report, error) {
	var r Report
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("drill record is not valid JSON: %w", err)
	}
	switch {
	case r.Version < 1 || r.Version > RecordVersion:
		return nil, fmt.Errorf("drill record version %d is not one this binarc reads (1 to %d): upgrade binarc", r.Version, RecordVersion)
	case r.Started.IsZero() || r.Finished.Before(r.Started):
		return nil, fmt.Errorf("drill record has no start, or finishes before it starts")
	case r.RestoreSeconds < 0 || r.RestoreSeconds > 1e9 || len(r.Tables) > maxTables:
		return nil, fmt.Errorf("drill record claims %g s of restore and %d tables: not a record binarc wrote", r.RestoreSeconds, len(r.Tables))
	}
	return &r, nil
}

func firstLine(s string) string {
	for i, c := range s {
		if c == '\n' {
			return s[:i]
		}
	}
	return s
}
