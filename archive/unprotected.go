package archive

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/binarc/binarc/archive/objstore"
)

// Unprotected is a range of a timeline the primary did not wait for binarc
// to archive (semi-sync fell back to asynchronous, or was off): a crash of
// the primary then could lose acknowledged commits in it, as without
// --semi-sync. It is written when binarc sees the fallback (open: To is
// empty) and again when the primary waits again (closed).
type Unprotected struct {
	Timeline string `json:"timeline"`
	// From is the last position binarc had acknowledged: every commit
	// after it may not have been waited for.
	FromFile   string    `json:"from_file"`
	FromOffset uint64    `json:"from_offset"`
	FromTime   time.Time `json:"from_time"`
	// To is the newest position binarc had received when it saw the
	// primary wait again; empty while the range is open (or binarc
	// stopped before it closed).
	ToFile   string    `json:"to_file,omitempty"`
	ToOffset uint64    `json:"to_offset,omitempty"`
	ToTime   time.Time `json:"to_time,omitzero"`
	Reason   string    `json:"reason"`
}

// Open tells whether the range has no recorded end.
func (u *Unprotected) Open() bool { return u.ToFile == "" }

// maxUnprotectedRecords and maxUnprotectedBytes bound what reading the
// records takes from an untrusted bucket.
const (
	maxUnprotectedRecords = 10000
	maxUnprotectedBytes   = 4 << 10
)

// PutUnprotected records u (open or closed, by u.ToFile) with a
// conditional put: writing the same record again is fine.
func PutUnprotected(ctx context.Context, store objstore.Store, l Layout, u *Unprotected) error {
	key := l.UnprotectedKey(u.Timeline, u.FromFile, u.FromOffset, !u.Open())
	if err := PutOnce(ctx, store, key, MarshalJSON(u)); err != nil {
		return fmt.Errorf("record unprotected range %s: %w", key, err)
	}
	return nil
}

// ReadUnprotected returns the recorded ranges of timeline tl in stream
// order, one per start: the closed record when there is one. A record that
// does not parse, or whose name and content disagree, is an error naming
// its key.
func ReadUnprotected(ctx context.Context, store objstore.Store, l Layout, tl string) ([]*Unprotected, error) {
	entries, err := store.List(ctx, l.UnprotectedPrefix(tl))
	if err != nil {
		return nil, err
	}
	if len(entries) > maxUnprotectedRecords {
		return nil, fmt.Errorf("%s holds %d semi-sync fallback records, more than %d: the primary keeps falling back; read them with a store client", l.UnprotectedPrefix(tl), len(entries), maxUnprotectedRecords)
	}
	byStart := map[string]*Unprotected{}
	for _, e := range entries {
		if e.Dir {
			continue
		}
		u, err := readUnprotected(ctx, store, tl, e.Key)
		if err != nil {
			return nil, err
		}
		k := fmt.Sprintf("%s@%020d", u.FromFile, u.FromOffset)
		if prev := byStart[k]; prev == nil || prev.Open() {
			byStart[k] = u
		}
	}
	out := make([]*Unprotected, 0, len(byStart))
	for _, u := range byStart {
		out = append(out, u)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].FromTime.Before(out[j].FromTime) })
	return out, nil
}

func readUnprotected(ctx context.Context, store objstore.Store, tl, key string) (*Unprotected, error) {
	file, offset, closed, err := ParseUnprotectedName(key)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	data, _, err := objstore.ReadAtMost(ctx, store, key, maxUnprotectedBytes)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	var u Unprotected
	if err := json.Unmarshal(data, &u); err != nil {
		return nil, fmt.Errorf("%s: not a semi-sync fallback record: %w", key, err)
	}
	if u.Timeline != tl || u.FromFile != file || u.FromOffset != offset || u.Open() == closed {
		return nil, fmt.Errorf("%s: %w: its content (%s %s:%d, closed %v) disagrees with its name", key, errBadUnprotected, u.Timeline, u.FromFile, u.FromOffset, !u.Open())
	}
	return &u, nil
}

var errBadUnprotected = errors.New("bad semi-sync fallback record")
