package verify

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/binarc/binarc/archive"
)

// TestVerifyNeedsIdentity: an encrypted timeline without an identity is
// bad input, naming the oldest encrypted timeline and its recipients, in
// the same words every run (not the map order of the timelines).
func TestVerifyNeedsIdentity(t *testing.T) {
	a := newVerifyArchive(t)
	for _, tl := range []string{vtl2, "000003-20261127T000000Z"} {
		putJSON(t, a.mem, a.layout.TimelineKey(tl), &archive.TimelineInfo{Version: archive.LayoutVersionPlain, Timeline: tl, StartFile: "mysql-bin.000009",
			SourceServerID: 1, Reason: "new archive", Encryption: &archive.Encryption{Scheme: "age", Recipients: []string{"age1" + tl[:6]}}})
	}
	for i := 0; i < 10; i++ {
		_, err := Verify(context.Background(), a.cat, VerifyOptions{})
		if !errors.Is(err, archive.ErrRequest) {
			t.Fatalf("verify of an encrypted timeline without an identity: %v; want ErrRequest", err)
		}
		if want := "timeline " + vtl2 + ` of cluster "c" is encrypted to age1000002: verify reads every event, so pass --identity FILE`; !strings.HasPrefix(err.Error(), want) {
			t.Fatalf("run %d: %q; want it to begin %q", i, err, want)
		}
	}
}
