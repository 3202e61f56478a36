package progress

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestLine(t *testing.T) {
	got := Line("replay", "transactions", State{Bytes: 50 << 20, TotalBytes: 100 << 20, Items: 10, TotalItems: 40}, 5<<20, 10*time.Second)
	for _, want := range []string{"[############............]  50%", "50.0 MiB/100.0 MiB", "10/40 transactions", "5.0 MiB/s", "10s left"} {
		if !strings.Contains(got, want) {
			t.Errorf("Line = %q, lacks %q", got, want)
		}
	}
	if got := Line("serve", "transactions", State{Bytes: 1 << 20, Items: 3}, 0, -1); strings.Contains(got, "[") || strings.Contains(got, "left") {
		t.Errorf("without totals: %q", got)
	}
}

// TestReporterCompletes: the terminal gets the final state even when it
// comes right after another, and a newline after it.
func TestReporterCompletes(t *testing.T) {
	var out bytes.Buffer
	r := &Reporter{What: "replay", Items: "transactions", Terminal: &out}
	r.Update(State{Bytes: 1, TotalBytes: 10})
	r.Update(State{Bytes: 5, TotalBytes: 10}) // too soon: not drawn
	r.Update(State{Bytes: 10, TotalBytes: 10, Items: 7})
	r.Update(State{Bytes: 10, TotalBytes: 10, Items: 7}) // after completion: nothing
	s := out.String()
	if strings.Count(s, "\r") != 2 || !strings.HasSuffix(s, "\n") || !strings.Contains(s, "100%") || !strings.Contains(s, "7 transactions") {
		t.Errorf("terminal output %q", s)
	}
}
