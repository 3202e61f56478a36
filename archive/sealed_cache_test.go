package archive

import (
	"strings"
	"testing"
	"time"

	"github.com/binarc/binarc/archive/crypt"
	"github.com/binarc/binarc/archive/objstore"
)

// TestTimelineEncryptedCacheBounded: the cache of which timelines are
// encrypted holds at most timelineCacheMax manifests however many stores
// a long-running process opens (serve, the prune runner), and still refuses
// a clear-text object in an encrypted timeline.
func TestTimelineEncryptedCacheBounded(t *testing.T) {
	ctx := t.Context()
	layout := Layout{Cluster: "c"}
	tl := FormatTimeline(1, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	key := layout.TimelinePrefix(tl) + "mysql-bin.000001/compacted.zst"
	for i := range timelineCacheMax + 100 {
		ti := TimelineInfo{Version: LayoutVersionPlain, Timeline: tl}
		if i == 0 {
			ti.Encryption = &Encryption{Scheme: crypt.Scheme, Recipients: []string{"age1x"}}
		}
		store := objstore.NewMemory()
		if _, err := store.Put(ctx, layout.TimelineKey(tl), MarshalJSON(ti), objstore.PutOptions{}); err != nil {
			t.Fatal(err)
		}
		c := Catalog{Store: store, Layout: layout}
		err := c.checkPlainAllowed(ctx, key)
		if i == 0 && (err == nil || !strings.Contains(err.Error(), "not encrypted")) {
			t.Fatalf("a clear-text object in an encrypted timeline: %v", err)
		}
		if i > 0 && err != nil {
			t.Fatal(err)
		}
	}
	if n := timelineCacheLen(); n > timelineCacheMax {
		t.Fatalf("the cache holds %d manifests, more than %d: it is never evicted", n, timelineCacheMax)
	}
}

func timelineCacheLen() int {
	timelineEncrypted.mu.Lock()
	defer timelineEncrypted.mu.Unlock()
	return len(timelineEncrypted.m)
}
