package restore

import (
	"strings"
	"testing"
)

func TestGTIDIn(t *testing.T) {
	for _, tc := range []struct {
		g, set string
		in     bool
		err    string
	}{
		{"0-1-5", "0-1-7", true, ""},
		{"0-1-8", "0-1-7", false, ""},
		{"1-1-3", "0-1-7,1-2-3", true, ""},
		{"2-1-1", "0-1-7", false, ""},
		{"0-1-5", "", false, ""},
		// Malformed input is an error, never a sequence number of 0.
		{"0-1-x", "0-1-7", false, "not a number"},
		{"0-1", "0-1-7", false, "not a MariaDB GTID"},
		{"0-1-5", "0-1-junk", false, "snapshot's GTID position"},
	} {
		in, err := gtidIn(tc.g, tc.set)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("gtidIn(%q, %q) = %v, %v; want an error naming %q", tc.g, tc.set, in, err, tc.err)
			}
			continue
		}
		if err != nil || in != tc.in {
			t.Errorf("gtidIn(%q, %q) = %v, %v; want %v", tc.g, tc.set, in, err, tc.in)
		}
	}
}
