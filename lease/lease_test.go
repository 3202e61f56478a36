package lease

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/archive/objstore"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestLeaseSingleWriter(t *testing.T) {
	ctx := context.Background()
	store := objstore.NewMemory()
	layout := archive.Layout{Cluster: "c"}
	clk := &clock{time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	a, err := acquire(ctx, store, layout.LeaseKey(), layout.Cluster, Info{Host: "host-a", PID: 10, Command: "binarc stream"}, 30*time.Second, clk.now)
	must(t, err)

	// Another host while the lease is fresh: refused, naming the holder.
	_, err = acquire(ctx, store, layout.LeaseKey(), layout.Cluster, Info{Host: "host-b", PID: 20}, 30*time.Second, clk.now)
	var held *HeldError
	if !errors.As(err, &held) || held.Holder.Host != "host-a" || !errors.Is(err, ErrHeld) {
		t.Fatalf("second writer: %v", err)
	}
	// Renewal keeps it fresh.
	clk.t = clk.t.Add(20 * time.Second)
	must(t, a.Renew(ctx))
	clk.t = clk.t.Add(20 * time.Second)
	if _, err := acquire(ctx, store, layout.LeaseKey(), layout.Cluster, Info{Host: "host-b", PID: 20}, 30*time.Second, clk.now); !errors.As(err, &held) {
		t.Fatalf("renewed lease taken over: %v", err)
	}
	// Expired: taken over, and the old holder learns it lost the lease.
	clk.t = clk.t.Add(31 * time.Second)
	b, err := acquire(ctx, store, layout.LeaseKey(), layout.Cluster, Info{Host: "host-b", PID: 20}, 30*time.Second, clk.now)
	must(t, err)
	if err := a.Renew(ctx); !errors.Is(err, ErrLost) {
		t.Fatalf("old holder renewing after takeover: %v", err)
	}
	// The old holder's release must not free the new holder's lease.
	must(t, a.Release(ctx))
	if _, err := acquire(ctx, store, layout.LeaseKey(), layout.Cluster, Info{Host: "host-c", PID: 30}, 30*time.Second, clk.now); !errors.As(err, &held) {
		t.Fatalf("stale release freed the new lease: %v", err)
	}
	// A clean release lets the next writer in at once.
	must(t, b.Release(ctx))
	if _, err := acquire(ctx, store, layout.LeaseKey(), layout.Cluster, Info{Host: "host-c", PID: 30}, 30*time.Second, clk.now); err != nil {
		t.Fatalf("after release: %v", err)
	}
}

func TestLeaseDeadHolderOnThisHost(t *testing.T) {
	ctx := context.Background()
	store := objstore.NewMemory()
	layout := archive.Layout{Cluster: "c"}
	clk := &clock{time.Now()}
	// A holder on this host whose pid no longer exists (killed with -9):
	// taken over at once, without waiting for expiry.
	self := selfIdentity("binarc stream")
	_, err := acquire(ctx, store, layout.LeaseKey(), layout.Cluster, Info{Host: "same", PID: 1 << 30, BootID: self.BootID, PIDNamespace: self.PIDNamespace}, time.Hour, clk.now)
	must(t, err)
	if _, err := acquire(ctx, store, layout.LeaseKey(), layout.Cluster, Info{Host: "same", PID: 1 << 29, BootID: self.BootID, PIDNamespace: self.PIDNamespace}, time.Hour, clk.now); err != nil {
		t.Fatalf("dead holder on this host not recognised: %v", err)
	}
}

// TestSnapshotLeaseBesideStreamLease: the snapshot job's lease is its own
// object, so it is taken while the stream holds the cluster's lease, and a
// second snapshot job is refused.
func TestSnapshotLeaseBesideStreamLease(t *testing.T) {
	ctx := t.Context()
	store := objstore.NewMemory()
	layout := archive.Layout{Cluster: "c"}
	if _, err := Acquire(ctx, store, layout, "binarc stream", time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := AcquireAt(ctx, store, layout.SnapshotLeaseKey(), layout.Cluster, "binarc snapshot", time.Minute); err != nil {
		t.Fatalf("snapshot lease refused while the stream holds its own: %v", err)
	}
	clk := &clock{time.Now()}
	_, err := acquire(ctx, store, layout.SnapshotLeaseKey(), layout.Cluster, Info{Host: "other-host", PID: 7}, time.Minute, clk.now)
	var held *HeldError
	if !errors.As(err, &held) || held.Holder.Command != "binarc snapshot" {
		t.Fatalf("second snapshot lease = %v, want HeldError naming binarc snapshot", err)
	}
}

func TestReadLease(t *testing.T) {
	ctx := context.Background()
	s := objstore.NewMemory()
	l := archive.Layout{Cluster: "c"}
	now := time.Now()
	if li, err := Read(ctx, s, l.LeaseKey(), now); li != nil || err != nil {
		t.Fatalf("no lease: %v %v", li, err)
	}
	put := func(li Info) {
		if _, err := s.Put(ctx, l.LeaseKey(), archive.MarshalJSON(li), objstore.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	put(Info{ID: "a", Host: "h", PID: 7, Command: "binarc stream", Expires: now.Add(time.Minute)})
	if li, err := Read(ctx, s, l.LeaseKey(), now); li == nil || li.ID != "a" || err != nil {
		t.Fatalf("live lease: %+v %v", li, err)
	}
	put(Info{ID: "c", Host: "h", PID: 7, Expires: now.Add(-time.Second)})
	if li, _ := Read(ctx, s, l.LeaseKey(), now); li != nil {
		t.Fatalf("expired lease read as held: %+v", li)
	}
}

// TestLeaseReleaseBesideConfirm: binarc stream releases its lease on
// SIGTERM while the prune runner may be inside Confirm on the same lease;
// under -race, the two must not touch the lease's state at once.
func TestLeaseReleaseBesideConfirm(t *testing.T) {
	ctx := t.Context()
	store := objstore.NewMemory()
	layout := archive.Layout{Cluster: "c"}
	l, err := acquire(ctx, store, layout.LeaseKey(), layout.Cluster, Info{Host: "a", PID: 1, Command: "binarc stream"}, time.Minute, time.Now)
	must(t, err)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 50 {
			_ = l.Confirm(ctx) // ErrLost once released: the lease is no longer ours
		}
	}()
	must(t, l.Release(ctx))
	<-done
	// A Confirm after the release must not bring the lease back.
	if li, err := Read(ctx, store, layout.LeaseKey(), time.Now()); err != nil || li != nil {
		t.Fatalf("after Release beside Confirm, the lease reads %+v, %v; want released", li, err)
	}
	if err := l.Confirm(ctx); !errors.Is(err, ErrLost) {
		t.Fatalf("Confirm after Release: %v, want ErrLost", err)
	}
}

// TestHold: a held lease is renewed until release gives it back; a lease
// lost meanwhile ends the held context, with the loss as its cause.
func TestHold(t *testing.T) {
	ctx := context.Background()
	store, key, a := firstHolder(t, "host-a")
	hctx, release := a.Hold(ctx)
	time.Sleep(1500 * time.Millisecond) // past the TTL: only renewals keep it
	if _, err := acquire(ctx, store, key, "c", Info{Host: "host-b", PID: 20}, time.Second, time.Now); !errors.Is(err, ErrHeld) {
		t.Fatalf("held lease taken over: %v", err)
	}
	must(t, release())
	if hctx.Err() == nil {
		t.Fatal("the held context outlives release")
	}
	b, err := acquire(ctx, store, key, "c", Info{Host: "host-b", PID: 20}, time.Second, time.Now)
	if err != nil {
		t.Fatalf("after release: %v", err)
	}

	hctx, release = b.Hold(ctx)
	defer release()
	if _, err := store.Put(ctx, key, []byte(`{}`), objstore.PutOptions{}); err != nil { // another writer's
		t.Fatal(err)
	}
	select {
	case <-hctx.Done():
		if !errors.Is(context.Cause(hctx), ErrLost) {
			t.Fatalf("held context ended by %v; want ErrLost", context.Cause(hctx))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a lost lease left the held context running")
	}
}

// TestLeaseDumpForTheSuccessor: the dump connection a holder records is
// what its successor reads in Previous(), whether the holder released the
// lease or died holding it.
func TestLeaseDumpForTheSuccessor(t *testing.T) {
	ctx := t.Context()
	store, key, a := firstHolder(t, "h")
	at := time.Now().UTC().Truncate(time.Second)
	must(t, a.SetDump(ctx, DumpConn{Server: "db1:3306", ThreadID: 42, Recorded: at}))
	must(t, a.Release(ctx))
	b, err := acquire(ctx, store, key, "c", Info{Host: "h", PID: 20}, time.Second, time.Now)
	must(t, err)
	if p := b.Previous(); p == nil || p.Dump == nil || *p.Dump != (DumpConn{Server: "db1:3306", ThreadID: 42, Recorded: at}) {
		t.Fatalf("the successor reads the previous dump as %+v", p)
	}
	must(t, b.SetDump(ctx, DumpConn{Server: "db2:3306", ThreadID: 7, Recorded: at}))
	// The write of an earlier reconnect landing last changes nothing.
	must(t, b.SetDump(ctx, DumpConn{Server: "db2:3306", ThreadID: 6, Recorded: at.Add(-time.Second)}))
	time.Sleep(1100 * time.Millisecond) // b dies holding it: its lease expires
	c, err := acquire(ctx, store, key, "c", Info{Host: "other", PID: 30}, time.Second, time.Now)
	must(t, err)
	if p := c.Previous(); p == nil || p.Dump == nil || p.Dump.ThreadID != 7 || p.Dump.Server != "db2:3306" {
		t.Fatalf("after a holder died, the successor reads the previous dump as %+v", p)
	}
}

// firstHolder takes cluster c's lease in a new memory store, as pid 10 on
// host, with a one-second TTL.
func firstHolder(t *testing.T, host string) (objstore.Store, string, *Lease) {
	t.Helper()
	store := objstore.NewMemory()
	key := archive.Layout{Cluster: "c"}.LeaseKey()
	l, err := acquire(t.Context(), store, key, "c", Info{Host: host, PID: 10}, time.Second, time.Now)
	must(t, err)
	return store, key, l
}
