package restore

import (
	"strings"
	"testing"
	"time"
)

// TestParseTargetDST: a local time in the hour repeated in autumn names
// two instants, one in the hour skipped in spring none: both refused,
// naming both instants. Times beside them are read as before.
func TestParseTargetDST(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"2026-10-25 02:30:00 Europe/Paris", "ambiguous"},
		{"2026-03-29 02:30:00 Europe/Paris", "does not exist"},
	} {
		_, err := ParseTarget(c.in)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Fatalf("%q: %v; want %q", c.in, err, c.want)
		}
		t.Logf("%q: %v", c.in, err)
	}
	_, err := ParseTarget("2026-10-25 02:30:00 Europe/Paris")
	for _, instant := range []string{"2026-10-25T00:30:00Z", "2026-10-25T01:30:00Z"} {
		if !strings.Contains(err.Error(), instant) {
			t.Fatalf("ambiguous: %v; want it to name %s", err, instant)
		}
	}
	_, err = ParseTarget("2026-03-29 02:30:00 Europe/Paris")
	for _, instant := range []string{"2026-03-29T01:30:00Z", "2026-03-29T00:30:00Z"} {
		if !strings.Contains(err.Error(), instant) {
			t.Fatalf("skipped: %v; want it to name %s", err, instant)
		}
	}
	for in, want := range map[string]string{
		"2026-10-25 01:30:00 Europe/Paris": "2026-10-24T23:30:00Z",
		"2026-10-25 03:30:00 Europe/Paris": "2026-10-25T02:30:00Z",
		"2026-03-29 03:30:00 Europe/Paris": "2026-03-29T01:30:00Z",
		"2026-11-20 14:45:00 Europe/Paris": "2026-11-20T13:45:00Z",
		"2026-11-01 01:30:00 UTC":          "2026-11-01T01:30:00Z",
	} {
		tg, err := ParseTarget(in)
		if err != nil || tg.Time.UTC().Format(time.RFC3339) != want {
			t.Errorf("%q: %v %v; want %s", in, tg.Time.UTC(), err, want)
		}
	}
}
