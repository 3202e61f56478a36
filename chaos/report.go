package chaos

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Report is a campaign's outcome: what was done, what binarc logged, what
// the checker found. It is written as report.txt and report.json.
type Report struct {
	Seed                uint64          `json:"seed"`
	Duration            string          `json:"duration"`
	SemiSync            bool            `json:"semi_sync,omitempty"`
	BinlogFormat        string          `json:"binlog_format,omitempty"`
	SemiSyncFallbacks   []Fallback      `json:"semi_sync_fallbacks,omitempty"`
	Dir                 string          `json:"dir"`
	Faults              []FaultRecord   `json:"faults"`
	Checkpoints         []Checkpoint    `json:"checkpoints"`
	Snapshots           int             `json:"snapshots"`
	Acked               int             `json:"acked"`
	Uncertain           int             `json:"uncertain"`
	HistoryTransactions int             `json:"history_transactions"`
	Restores            []RestoreResult `json:"restores"`
	Losses              []Loss          `json:"losses"`
	PeakRSSKiB          uint64          `json:"peak_rss_kib"`
	LastStop            string          `json:"last_stop"`
	Failures            []string        `json:"failures"`
}

// Passed reports whether every check held.
func (r *Report) Passed() bool { return len(r.Failures) == 0 }

func (r *Report) fail(format string, args ...any) {
	r.Failures = append(r.Failures, fmt.Sprintf(format, args...))
}

// Counts is how many of each step ran (and how many could not be applied).
func (r *Report) Counts() map[Kind][2]int {
	n := map[Kind][2]int{}
	for _, f := range r.Faults {
		c := n[f.Kind]
		c[0]++
		if f.Error != "" {
			c[1]++
		}
		n[f.Kind] = c
	}
	return n
}

// WriteText writes the human report.
func (r *Report) WriteText(w io.Writer) {
	verdict := "PASS"
	if !r.Passed() {
		verdict = "FAIL"
	}
	mode, rerun := "", ""
	if r.SemiSync {
		mode, rerun = ", --semi-sync", " SEMISYNC=1"
	}
	if r.BinlogFormat != "" {
		mode += ", binlog_format " + r.BinlogFormat
		rerun += " BINLOG_FORMAT=" + r.BinlogFormat
	}
	fmt.Fprintf(w, "binarc fault campaign: seed %d, %s%s: %s\n", r.Seed, r.Duration, mode, verdict)
	fmt.Fprintf(w, "rerun: make chaos SEED=%d DURATION=%s%s\n\n", r.Seed, r.Duration, rerun)
	counts := r.Counts()
	kinds := make([]string, 0, len(counts))
	for k := range counts {
		kinds = append(kinds, string(k))
	}
	sort.Strings(kinds)
	fmt.Fprintln(w, "steps (run / not applicable):")
	for _, k := range kinds {
		c := counts[Kind(k)]
		fmt.Fprintf(w, "  %-18s %3d / %d\n", k, c[0], c[1])
	}
	fmt.Fprintf(w, "\nwrites: %d acknowledged, %d uncertain (COMMIT without an answer); %d transactions along the archive's history\n",
		r.Acked, r.Uncertain, r.HistoryTransactions)
	fmt.Fprintf(w, "snapshots: %d; binarc stream peak RSS %.1f MiB; last stop took %s\n\n", r.Snapshots, float64(r.PeakRSSKiB)/1024, r.LastStop)
	fmt.Fprintln(w, "timeline of steps:")
	for _, f := range r.Faults {
		if f.Kind == Pause {
			continue
		}
		line := fmt.Sprintf("  %s  %s", f.Step, f.Detail)
		if f.Error != "" {
			line += "  [not applied: " + firstLine(f.Error) + "]"
		}
		fmt.Fprintln(w, line)
		for i, l := range f.Logged {
			if i == 4 {
				fmt.Fprintf(w, "      … %d more binarc log lines\n", len(f.Logged)-4)
				break
			}
			fmt.Fprintf(w, "      binarc run %d %s %s: %s\n", l.Run, l.Time, l.Level, l.Message)
		}
	}
	fmt.Fprintln(w, "\nrestores:")
	for _, x := range r.Restores {
		from := ""
		if x.Snapshot != "" {
			from = ", from " + x.Snapshot
		}
		fmt.Fprintf(w, "  --to %-45s (%s, checkpoint on %s%s) %s\n", x.To, x.By, x.Checkpoint.Server, from, x.Verdict)
	}
	if r.SemiSync {
		fmt.Fprintf(w, "\nsemi-sync fallbacks of the writable master (Rpl_semi_sync_master_status OFF): %d\n", len(r.SemiSyncFallbacks))
		for _, f := range r.SemiSyncFallbacks {
			fmt.Fprintf(w, "  %s\n", f)
		}
	}
	fmt.Fprintf(w, "\nlosses: %d\n", len(r.Losses))
	for _, l := range r.Losses {
		fmt.Fprintf(w, "  %s (row %d on %s), committed %s before the fault: %s; %s\n", l.GTID, l.ID, l.Server, l.BeforeFault, l.Cause, l.Archived)
	}
	fmt.Fprintf(w, "\nfailures: %d\n", len(r.Failures))
	for _, f := range r.Failures {
		fmt.Fprintln(w, "  "+f)
	}
}

// Save writes report.txt and report.json into the campaign's directory and
// returns the text report's path.
func (r *Report) Save() (string, error) {
	var text strings.Builder
	r.WriteText(&text)
	txt := filepath.Join(r.Dir, "report.txt")
	if err := os.WriteFile(txt, []byte(text.String()), 0o644); err != nil {
		return "", err
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return "", err
	}
	return txt, os.WriteFile(filepath.Join(r.Dir, "report.json"), b, 0o644)
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// lagOf reads bytes_behind and the summary from binarc ls --json.
func lagOf(out string) (uint64, string) {
	var v struct {
		Lag *struct {
			BytesBehind uint64 `json:"bytes_behind"`
			Summary     string `json:"summary"`
		} `json:"lag"`
	}
	if i := strings.IndexByte(out, '{'); i >= 0 {
		out = out[i:]
	}
	if json.NewDecoder(strings.NewReader(out)).Decode(&v) != nil || v.Lag == nil {
		return 1, "no lag in binarc ls --json"
	}
	return v.Lag.BytesBehind, v.Lag.Summary
}

func containsAny(s string, subs ...string) bool {
	for _, x := range subs {
		if strings.Contains(s, x) {
			return true
		}
	}
	return false
}
