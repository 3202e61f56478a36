package lease

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/archive/objstore"
	"github.com/binarc/binarc/internal/procfs"
)

// carelessStore is a store that ignores conditions on puts, as some
// S3-compatible servers do.
type carelessStore struct{ *objstore.Memory }

func (c carelessStore) Put(ctx context.Context, key string, data []byte, _ objstore.PutOptions) (objstore.ObjectInfo, error) {
	return c.Memory.Put(ctx, key, data, objstore.PutOptions{})
}

// TestConditionalWritesProbe: a store that ignores conditional puts is
// refused when a lease is taken (stream, snapshot and prune all take one),
// naming the store and the risk; the probe object is removed either way.
func TestConditionalWritesProbe(t *testing.T) {
	ctx := context.Background()
	layout := archive.Layout{Cluster: "c"}
	mem := objstore.NewMemory()
	l, err := Acquire(ctx, mem, layout, "binarc stream", time.Minute)
	if err != nil {
		t.Fatalf("an honest store: %v", err)
	}
	must(t, l.Release(ctx))

	careless := objstore.NewMemory()
	_, err = Acquire(ctx, carelessStore{careless}, layout, "binarc stream", time.Minute)
	if !errors.Is(err, ErrStoreIgnoresConditions) || !strings.Contains(err.Error(), "overwritten") || !strings.Contains(err.Error(), careless.String()) {
		t.Fatalf("a store ignoring conditions: %v; want ErrStoreIgnoresConditions naming the store and the risk", err)
	}
	for _, s := range []*objstore.Memory{mem, careless} {
		ents, _ := s.List(ctx, layout.Root())
		for _, e := range ents {
			if strings.Contains(e.Key, "probe-") {
				t.Fatalf("probe left behind: %s", e.Key)
			}
		}
	}
	if ents, _ := careless.List(ctx, layout.Root()); len(ents) != 0 {
		t.Fatalf("refused, yet wrote %v", ents)
	}
}

// TestLeaseIdentity: the pid means something only in the same boot of the
// same machine and the same pid namespace. Two containers sharing a host
// name, each pid 1, on different boots: the second is refused. A holder in
// this process space whose pid now belongs to a process started at
// another time is dead, and its lease taken over.
func TestLeaseIdentity(t *testing.T) {
	ctx := context.Background()
	layout := archive.Layout{Cluster: "c"}
	clk := &clock{time.Now()}
	for name, pair := range map[string][2]Info{
		"different boot ids": {
			{Host: "app", PID: 1, BootID: "boot-a", PIDNamespace: "pid:[1]", Started: 100},
			{Host: "app", PID: 1, BootID: "boot-b", PIDNamespace: "pid:[1]", Started: 100}},
		"different pid namespaces": {
			{Host: "app", PID: 1, BootID: "boot-a", PIDNamespace: "pid:[1]", Started: 100},
			{Host: "app", PID: 1, BootID: "boot-a", PIDNamespace: "pid:[2]", Started: 200}},
		"no boot id recorded": {
			{Host: "app", PID: 1},
			{Host: "app", PID: 1}},
	} {
		store := objstore.NewMemory()
		_, err := acquire(ctx, store, layout.LeaseKey(), layout.Cluster, pair[0], time.Hour, clk.now)
		must(t, err)
		var held *HeldError
		if _, err := acquire(ctx, store, layout.LeaseKey(), layout.Cluster, pair[1], time.Hour, clk.now); !errors.As(err, &held) {
			t.Fatalf("%s: the second lease: %v; want it refused", name, err)
		}
	}

	// Our parent's pid, recorded with another start time: reused, so dead.
	self := selfIdentity("binarc stream")
	ppid := os.Getppid()
	store := objstore.NewMemory()
	dead := Info{Host: self.Host, PID: ppid, BootID: self.BootID, PIDNamespace: self.PIDNamespace, Started: procfs.StartTime(ppid) + 1}
	_, err := acquire(ctx, store, layout.LeaseKey(), layout.Cluster, dead, time.Hour, clk.now)
	must(t, err)
	if _, err := acquire(ctx, store, layout.LeaseKey(), layout.Cluster, self, time.Hour, clk.now); err != nil {
		t.Fatalf("a holder whose pid was reused: %v; want it taken over", err)
	}
	// Our parent, recorded with its true start time: alive.
	store = objstore.NewMemory()
	alive := dead
	alive.Started = procfs.StartTime(ppid)
	_, err = acquire(ctx, store, layout.LeaseKey(), layout.Cluster, alive, time.Hour, clk.now)
	must(t, err)
	var held *HeldError
	if _, err := acquire(ctx, store, layout.LeaseKey(), layout.Cluster, self, time.Hour, clk.now); !errors.As(err, &held) {
		t.Fatalf("a live holder in this process space: %v; want it refused", err)
	}
	if self.BootID == "" || self.Started == 0 || self.PIDNamespace == "" {
		t.Fatalf("self identity incomplete: %+v", self)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
