package stream

import (
	"errors"
	"time"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/internal/retry"
	"github.com/binarc/binarc/lease"
	"github.com/binarc/binarc/replication"
)

// The committer: it takes stored segments in order, advances the durable
// position over the longest stored prefix and writes a file's index once
// the file is complete.

// committer advances the durable position in sequence order and writes
// file indexes.
func (u *Uploader) committer() {
	defer u.wg.Done()
	pending := map[uint64]*item{}
	var next uint64
	files := map[string][]archive.SegmentInfo{} // segments of files not yet indexed
	for {
		select {
		case <-u.ctx.Done():
			return
		case it := <-u.done:
			pending[it.seq] = it
		}
		for {
			it, ok := pending[next]
			if !ok {
				break
			}
			delete(pending, next)
			next++
			if err := u.commit(it, files); err != nil {
				if u.ctx.Err() == nil {
					u.fail(err)
				}
				return
			}
		}
	}
}

func (u *Uploader) commit(it *item, files map[string][]archive.SegmentInfo) error {
	if s := it.seg; s != nil {
		// The buffer counts a segment until it is committed, not just
		// stored: uploads that finish while an earlier one waits out its
		// retry backoff are held here, and must not let more in.
		u.bytesMu.Lock()
		u.buffered -= it.size
		u.bytesMu.Unlock()
		u.bytesCond.Broadcast()
		k := s.Timeline + "/" + s.File
		files[k] = append(files[k], archive.SegmentInfoOf(s, it.stored))
		d := Durable{Timeline: s.Timeline, Position: replication.Position{File: s.File, Offset: s.End}, EventTime: archive.UnixTime(s.LastTime)}
		u.setDurable(d, s.Received)
		return nil
	}
	fe := it.fileEnd
	k := fe.Timeline + "/" + fe.File
	segs := files[k]
	delete(files, k)
	if err := u.writeIndex(fe, segs); err != nil {
		return err
	}
	if u.cfg.FileIndexed != nil {
		u.cfg.FileIndexed(fe.Timeline, fe.File)
	}
	u.setDurable(Durable{}, time.Time{})
	return nil
}

// setDurable records progress; a zero d only counts a committed marker.
func (u *Uploader) setDurable(d Durable, received time.Time) {
	u.durMu.Lock()
	if d.Timeline != "" {
		u.durable = d
	}
	u.pending--
	u.unstored = u.unstored[1:]
	if u.pending == 0 {
		close(u.idle)
	}
	cur := u.durable
	u.durMu.Unlock()
	if d.Timeline != "" && u.obs != nil {
		u.obs.DurableAdvanced(cur, received)
	}
}

// writeIndex stores the index of a complete file. segs holds the segments
// this process stored; when the file was begun by an earlier process, the
// rest are read back from the store.
func (u *Uploader) writeIndex(fe *FileEnd, segs []archive.SegmentInfo) error {
	_, err := retry.Do(u.ctx, retry.Backoff{Initial: 100 * time.Millisecond, Max: u.cfg.MaxBackoff}, u.outage,
		func(err error) bool { return errors.Is(err, lease.ErrLost) || errors.Is(err, archive.ErrConflict) },
		func() (struct{}, error) {
			if err := u.beforeWrite(); err != nil {
				return struct{}{}, err
			}
			return struct{}{}, archive.Catalog{Store: u.store, Layout: u.layout, Signer: u.cfg.Signer}.WriteFileIndex(u.ctx, fe.Timeline, fe.File, fe.Next, segs)
		})
	return err
}
