package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestSelectedRuns(t *testing.T) {
	defer func(old string) { *semiSyncModes = old }(*semiSyncModes)
	*semiSyncModes = "async, after-commit"
	runs, err := selectedRuns()
	if err != nil || len(runs) != 2 || runs[0].name != "asynchronous" || runs[1].waitPoint != "AFTER_COMMIT" {
		t.Fatalf("selectedRuns = %+v, %v", runs, err)
	}
	*semiSyncModes = "async,bogus"
	if _, err := selectedRuns(); err == nil || !strings.Contains(err.Error(), `no mode "bogus"`) {
		t.Fatalf("an unknown mode: %v", err)
	}
}

// The report's ceiling: 64 writers each waiting a 12.8 ms PUT reach at
// most 5,000 commits/s, half of an asynchronous 10,000.
func TestReportCeiling(t *testing.T) {
	r := &SemiSyncResults{LoadSeconds: 5, Modes: []SemiSyncMode{
		{Name: "asynchronous", Writers: 64, LatencyMs: 10, PutP50ms: 12.8, CommitsPerSec: 10000, P50ms: 4},
		{Name: "semi-sync, store, AFTER_COMMIT", Writers: 64, LatencyMs: 10, PutP50ms: 12.8, CommitsPerSec: 3000, P50ms: 16, UploadMeanMs: 13, AckMeanMs: 15.5},
	}}
	var b bytes.Buffer
	r.writeMarkdown(&b)
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	row := lines[len(lines)-1]
	for _, want := range []string{"| 0.30 | 0.50 |", "<= 17.8 ms: yes", "13.0 / 15.5 ms"} {
		if !strings.Contains(row, want) {
			t.Errorf("row %q lacks %q", row, want)
		}
	}
}
