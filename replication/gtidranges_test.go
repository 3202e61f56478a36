package replication

import (
	"strings"
	"testing"
)

func TestGTIDRanges(t *testing.T) {
	r := GTIDRanges([]string{"0-1-4", "0-1-5", "0-1-6", "0-2-9", "0-1-8", "3e11fa47-71ca-11e1-9e33-c80aa9429562:7", "3e11fa47-71ca-11e1-9e33-c80aa9429562:8"})
	if got := strings.Join(r, ","); got != "0-1-4..6,0-2-9,0-1-8,3e11fa47-71ca-11e1-9e33-c80aa9429562:7-8" {
		t.Fatalf("ranges %s", got)
	}
	for g, want := range map[string]bool{"0-1-5": true, "0-1-7": false, "0-2-9": true, "0-11-5": false, "3e11fa47-71ca-11e1-9e33-c80aa9429562:8": true, "3e11fa47-71ca-11e1-9e33-c80aa9429562:9": false} {
		if InGTIDRanges(r, g) != want {
			t.Errorf("%s in %v: want %v", g, r, want)
		}
	}
	if FirstOfRange("0-1-4..6") != "0-1-4" || FirstOfRange("3e11fa47-71ca-11e1-9e33-c80aa9429562:7-8") != "3e11fa47-71ca-11e1-9e33-c80aa9429562:7" {
		t.Error("FirstOfRange")
	}
}
