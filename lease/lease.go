package lease

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/archive/objstore"
)

// Info is the content of the lease object: who writes the cluster's
// archive, until when.
type Info struct {
	ID   string `json:"id"`
	Host string `json:"host"`
	PID  int    `json:"pid"`
	// BootID (the kernel's boot_id, or the machine id), PIDNamespace and
	// Started (the process start time, in clock ticks since boot) make
	// the pid mean something: containers share host names and pid 1.
	BootID       string `json:"boot_id,omitempty"`
	PIDNamespace string `json:"pid_namespace,omitempty"`
	Started      uint64 `json:"started,omitempty"`
	// Stopped lists what the holder stopped and must start again (the
	// replica SQL thread of a snapshot): a successor that takes over a
	// dead holder's lease puts it back.
	Stopped []string `json:"stopped,omitempty"`
	// Dump is the replication connection the holder dumps the binlog on:
	// a successor ends it before its own dump under the same server_id
	// (SetDump).
	Dump    *DumpConn `json:"dump,omitempty"`
	Command string    `json:"command"`
	Renewed time.Time `json:"renewed"`
	Expires time.Time `json:"expires"`
}

// ErrHeld is returned when another live writer holds the lease.
var ErrHeld = errors.New("the cluster's archive is held by another writer")

// HeldError names the holder and what to do.
type HeldError struct {
	Cluster string
	Holder  Info
}

func (e *HeldError) Error() string {
	return fmt.Sprintf("cluster %q: another %s is already running on host %s (pid %d), lease renewed %s ago, expires in %s: "+
		"stop that process first; if it died without releasing the lease, wait for the lease to expire",
		e.Cluster, e.Holder.Command, e.Holder.Host, e.Holder.PID,
		time.Since(e.Holder.Renewed).Round(time.Second), time.Until(e.Holder.Expires).Round(time.Second))
}

func (e *HeldError) Unwrap() error { return ErrHeld }

// Lease keeps a single writer per cluster. It is an object created with a
// conditional put and renewed with compare-and-swap on its ETag, so of two
// writers exactly one holds it. A holder that died is recognised at once
// when it ran in this boot of this machine and in this pid namespace (its
// pid is gone, or now belongs to a process started at another time), and
// otherwise once its lease expires. Expiry compares the holder's clock
// with ours: hosts that share a cluster keep their clocks in step (NTP);
// a skew shortens or lengthens the wait by as much.
type Lease struct {
	// mu guards lost, info and etag: the holder renews and releases the
	// lease while the prune runner confirms it from its own goroutine.
	mu      sync.Mutex
	lost    error // set once the lease was taken over or released
	store   objstore.Store
	key     string
	cluster string
	ttl     time.Duration
	info    Info
	etag    string
	now     func() time.Time
	// previous is the holder this lease was taken over from, if any.
	previous *Info
}

// Acquire takes the cluster's lease for command ("stream", "prune", …).
func Acquire(ctx context.Context, store objstore.Store, layout archive.Layout, command string, ttl time.Duration) (*Lease, error) {
	return AcquireAt(ctx, store, layout.LeaseKey(), layout.Cluster, command, ttl)
}

// AcquireAt takes the lease object at key, for jobs that must not run
// twice at once but may run beside the stream (the snapshot job's
// archive.Layout.SnapshotLeaseKey).
func AcquireAt(ctx context.Context, store objstore.Store, key, cluster, command string, ttl time.Duration) (*Lease, error) {
	if err := CheckConditionalWrites(ctx, store, key); err != nil {
		return nil, err
	}
	return acquire(ctx, store, key, cluster, selfIdentity(command), ttl, time.Now)
}

func acquire(ctx context.Context, store objstore.Store, key, cluster string, owner Info, ttl time.Duration, now func() time.Time) (*Lease, error) {
	var idb [8]byte
	_, _ = rand.Read(idb[:])
	owner.ID = hex.EncodeToString(idb[:])
	l := &Lease{store: store, key: key, cluster: cluster, ttl: ttl, now: now, info: owner}
	for attempt := 0; attempt < 5; attempt++ {
		l.stamp()
		info, err := store.Put(ctx, l.key, archive.MarshalJSON(l.info), objstore.PutOptions{IfAbsent: true})
		if err == nil {
			l.etag = info.ETag
			return l, nil
		}
		if !errors.Is(err, objstore.ErrExist) {
			return nil, fmt.Errorf("take lease %s: %w", l.key, err)
		}
		data, cur, err := objstore.ReadSmall(ctx, store, l.key)
		if errors.Is(err, objstore.ErrNotExist) {
			continue // released in between
		}
		if err != nil {
			return nil, fmt.Errorf("read lease %s: %w", l.key, err)
		}
		var holder Info
		if err := json.Unmarshal(data, &holder); err != nil {
			holder = Info{} // unreadable: treat as expired
		}
		if !l.stale(holder) {
			return nil, &HeldError{Cluster: l.cluster, Holder: holder}
		}
		l.stamp()
		info, err = store.Put(ctx, l.key, archive.MarshalJSON(l.info), objstore.PutOptions{IfMatch: cur.ETag})
		if err == nil {
			l.etag = info.ETag
			l.previous = &holder
			return l, nil
		}
		if !errors.Is(err, objstore.ErrPrecondition) {
			return nil, fmt.Errorf("take over lease %s: %w", l.key, err)
		}
		// Someone else changed it in between: look again.
	}
	return nil, fmt.Errorf("take lease %s: it kept changing under us; is another archiver starting?", l.key)
}

func (l *Lease) stamp() {
	now := l.now().UTC()
	l.info.Renewed = now
	l.info.Expires = now.Add(l.ttl)
}

// stale tells whether the holder can no longer be writing.
func (l *Lease) stale(h Info) bool {
	if h.ID == "" || l.now().After(h.Expires) {
		return true
	}
	return sameProcessSpace(h, l.info) && !processAlive(h, l.info)
}

// Renew extends the lease. ErrLost means another writer took it: the
// caller must stop writing at once.
func (l *Lease) Renew(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.renew(ctx)
}

// renew is Renew with l.mu held.
func (l *Lease) renew(ctx context.Context) error {
	l.stamp()
	info, err := l.store.Put(ctx, l.key, archive.MarshalJSON(l.info), objstore.PutOptions{IfMatch: l.etag})
	if errors.Is(err, objstore.ErrPrecondition) || errors.Is(err, objstore.ErrNotExist) {
		return fmt.Errorf("%w: lease %s was taken over by another writer", ErrLost, l.key)
	}
	if err != nil {
		return fmt.Errorf("renew lease %s: %w", l.key, err)
	}
	l.etag = info.ETag
	return nil
}

// ErrLost means the lease is no longer ours.
var ErrLost = errors.New("lease lost")

// Release gives the lease up, if it is still ours.
// It holds l.mu: the stream releases its lease on SIGTERM while the prune
// runner may be confirming it. Once released, Confirm and Ensure return
// ErrLost without writing.
func (l *Lease) Release(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	// Expire it in place rather than delete it: a conditional put keeps us
	// from releasing a lease another writer took in the meantime.
	l.info.Expires = l.now().UTC().Add(-time.Second)
	_, err := l.store.Put(ctx, l.key, archive.MarshalJSON(l.info), objstore.PutOptions{IfMatch: l.etag})
	if err == nil || errors.Is(err, objstore.ErrPrecondition) {
		l.lost = fmt.Errorf("%w: lease %s was released", ErrLost, l.key)
		return nil
	}
	return err
}

// Ensure makes sure the lease is fresh before a write: it renews it when
// more than a third of its TTL has passed since the last renewal. Writers
// call it before every write; an idle writer therefore makes no request at
// all, and its lease lapses. ErrLost means another writer took it
// over meanwhile: the caller must stop writing.
func (l *Lease) Ensure(ctx context.Context) error {
	l.mu.Lock()
	fresh := l.lost == nil && l.now().Sub(l.info.Renewed) < l.ttl/3
	l.mu.Unlock()
	if fresh {
		return nil
	}
	return l.Confirm(ctx)
}

// Confirm renews the lease now, whatever its age: the proof, before a job
// that relies on it (a prune run beside the archiver), that it is still
// ours. ErrLost means another writer took it over.
func (l *Lease) Confirm(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lost != nil {
		return l.lost
	}
	err := l.renew(ctx)
	if errors.Is(err, ErrLost) {
		l.lost = err
	}
	return err
}

// Keep renews the lease every ttl/3 until ctx ends, for jobs that write
// all the time they run (a snapshot). It returns the error that made it
// give up: ErrLost, or renewals failing until expiry.
func (l *Lease) Keep(ctx context.Context) error {
	t := time.NewTicker(l.ttl / 3)
	defer t.Stop()
	lastOK := l.now()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		err := l.Renew(ctx)
		switch {
		case err == nil:
			lastOK = l.now()
		case errors.Is(err, ErrLost):
			return err
		case l.now().Sub(lastOK) > l.ttl*9/10:
			return fmt.Errorf("%w: could not renew it for %s (last error: %v)", ErrLost, l.now().Sub(lastOK).Round(time.Second), err)
		}
	}
}

// Hold keeps the lease renewed (Keep) until release is called; the
// returned context ends, its cause the loss, if the lease is lost first.
// release stops the renewal and gives the lease back (waiting at most
// 10 s); its error is Release's: the lease then expires by itself.
func (l *Lease) Hold(ctx context.Context) (_ context.Context, release func() error) {
	ctx, cancel := context.WithCancelCause(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := l.Keep(ctx); err != nil {
			cancel(err)
		}
	})
	return ctx, func() error {
		cancel(nil)
		wg.Wait()
		rctx, rcancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer rcancel()
		return l.Release(rctx)
	}
}

// Read reads the lease object at key. It returns nil when there is
// none, or when it has expired by now (the holder is gone, or released
// it).
func Read(ctx context.Context, store objstore.Store, key string, now time.Time) (*Info, error) {
	data, _, err := objstore.ReadSmall(ctx, store, key)
	if errors.Is(err, objstore.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read lease %s: %w", key, err)
	}
	var li Info
	if err := json.Unmarshal(data, &li); err != nil || li.ID == "" || !li.Expires.After(now) {
		return nil, nil
	}
	return &li, nil
}
