package restore

import (
	"strings"
	"testing"

	"github.com/binarc/binarc/replication"
)

// TestMalformedGTIDState: a GTID state from a manifest that does not parse
// is an error, never read as sequence number 0.
func TestMalformedGTIDState(t *testing.T) {
	for _, s := range []string{"0-1-x", "0-1", "0-1-5,0-1-junk", "0-x-5"} {
		if _, err := replication.ParseGTIDState(s); err == nil || !strings.Contains(err.Error(), "not a MariaDB GTID") {
			t.Errorf("ParseGTIDState(%q) = %v; want it refused", s, err)
		}
	}
	st, err := replication.ParseGTIDState("0-1-7,1-2-3")
	if err != nil {
		t.Fatal(err)
	}
	for g, want := range map[string]bool{"0-1-5": true, "0-1-8": false, "1-2-3": true, "2-1-1": false} {
		if st.Covers(g) != want {
			t.Errorf("0-1-7,1-2-3 covers %s: %v, want %v", g, !want, want)
		}
	}
}
