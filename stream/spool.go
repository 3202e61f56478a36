package stream

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/archive/objstore"
	"github.com/binarc/binarc/lease"
	"github.com/binarc/binarc/replication"
	"github.com/rs/zerolog"
)

// spool is --semi-sync-durability local: every sealed segment is written
// to a local directory, crash-safely, before its transactions are
// acknowledged, and deleted once the store holds it. The layout mirrors
// the bucket's: <spool-dir>/<cluster>/<timeline>/<binlog-file>/<start>-<end>.zst.
type spool struct {
	dir string
	log zerolog.Logger

	mu    sync.Mutex
	files []spoolFile // in stream order
}

type spoolFile struct {
	timeline, file string
	start, end     uint64
	path           string
}

const spoolTempSuffix = ".tmp"

// openSpool creates the directory if need be, deletes temporary files a
// crash left behind (never acknowledged: the rename makes a segment
// count), and lists the segments it holds.
func openSpool(dir string, log zerolog.Logger) (*spool, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("--spool-dir %s: %w", dir, err)
	}
	s := &spool{dir: dir, log: log}
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if strings.HasSuffix(path, spoolTempSuffix) {
			return os.Remove(path)
		}
		rel, _ := filepath.Rel(dir, path)
		parts := strings.Split(rel, string(filepath.Separator))
		if len(parts) != 3 {
			return fmt.Errorf("%s is not a spooled segment (want <timeline>/<binlog-file>/<start>-<end>.zst): is --spool-dir shared with something else?", path)
		}
		start, end, perr := archive.ParseSegmentName(parts[2])
		if perr != nil {
			return fmt.Errorf("%s is not a spooled segment: %w", path, perr)
		}
		s.files = append(s.files, spoolFile{timeline: parts[0], file: parts[1], start: start, end: end, path: path})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("--spool-dir %s: %w", dir, err)
	}
	removeEmptyDirs(dir)
	sort.Slice(s.files, func(i, j int) bool {
		a, b := s.files[i], s.files[j]
		if a.timeline != b.timeline {
			return a.timeline < b.timeline
		}
		if a.file != b.file {
			return replication.CompareBinlogNames(a.file, b.file) < 0
		}
		return a.start < b.start
	})
	return s, nil
}

// write stores seg durably: temp file, fsync, rename, fsync of the
// directory (and of new parents).
func (s *spool) write(seg *archive.Segment) error {
	dir := filepath.Join(s.dir, seg.Timeline, seg.File)
	if err := mkdirDurable(s.dir, dir); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	path := filepath.Join(dir, archive.FormatSegmentName(seg.Start, seg.End))
	tmp := path + spoolTempSuffix
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	for _, b := range seg.Data {
		if _, err = f.Write(b); err != nil {
			break
		}
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err == nil {
		err = objstore.SyncDir(dir)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("spool: write binlog=%s offset=%d: %w", seg.File, seg.Start, err)
	}
	s.mu.Lock()
	s.files = append(s.files, spoolFile{timeline: seg.Timeline, file: seg.File, start: seg.Start, end: seg.End, path: path})
	s.mu.Unlock()
	return nil
}

// stored drops the spooled segments the store's durable position covers.
// A crash before the removal only makes the next start look them up.
func (s *spool) stored(d Durable) {
	var done []spoolFile
	s.mu.Lock()
	kept := s.files[:0]
	for _, f := range s.files {
		if f.timeline == d.Timeline && posLE(replication.Position{File: f.file, Offset: f.end}, d.Position) {
			done = append(done, f)
		} else {
			kept = append(kept, f)
		}
	}
	s.files = kept
	s.mu.Unlock()
	for _, f := range done {
		s.remove(f)
	}
}

func (s *spool) remove(f spoolFile) {
	if err := os.Remove(f.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		s.log.Warn().Err(err).Str("path", f.path).Msg("spool: cannot delete a stored segment; it is checked against the store at the next start")
	}
	// Its directory stays: the writer may be about to use it. Empty ones
	// go at the next start.
}

// removeEmptyDirs deletes the empty binlog-file and timeline directories
// under root (best effort: a leftover is harmless).
func removeEmptyDirs(root string) {
	tls, _ := os.ReadDir(root)
	for _, tl := range tls {
		if !tl.IsDir() {
			continue
		}
		files, _ := os.ReadDir(filepath.Join(root, tl.Name()))
		for _, f := range files {
			_ = os.Remove(filepath.Join(root, tl.Name(), f.Name())) // fails unless empty
		}
		_ = os.Remove(filepath.Join(root, tl.Name()))
	}
}

// mkdirDurable creates dir (below root) and fsyncs each new directory's
// parent, so the entry survives a crash.
func mkdirDurable(root, dir string) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	parent := filepath.Dir(dir)
	if parent != root {
		if err := mkdirDurable(root, parent); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	return objstore.SyncDir(parent)
}

// replaySpool puts what an earlier run spooled, and perhaps acknowledged,
// into the store, before binarc connects to the primary (which may be gone
// for good). Segments the store already covers are dropped; the rest must
// continue the store's durable prefix.
func (a *Archiver) replaySpool(ctx context.Context) error {
	sp, err := openSpool(a.spoolDir(), a.log)
	if err != nil {
		return err
	}
	if len(sp.files) == 0 {
		return nil
	}
	lease, err := untilUp(a, ctx, "object store", func() (*lease.Lease, error) {
		return lease.Acquire(ctx, a.store, a.layout, "binarc stream (spool replay)", a.cfg.LeaseTTL)
	})
	if err != nil {
		return err
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = lease.Release(rctx)
	}()
	uploaded := 0
	for i := 0; i < len(sp.files); {
		tl := sp.files[i].timeline
		j := i
		for j < len(sp.files) && sp.files[j].timeline == tl {
			j++
		}
		rp, err := untilUp(a, ctx, "object store", func() (*ResumePoint, error) { return findResume(ctx, a.cat, tl, a.log) })
		if err != nil {
			return fmt.Errorf("spool replay: timeline %s: %w", tl, err)
		}
		at := rp.Position
		fileSums := map[string]bool{} // does a file's format description announce CRC32s
		for _, f := range sp.files[i:j] {
			end := replication.Position{File: f.file, Offset: f.end}
			switch {
			case posLE(end, at):
				sp.remove(f) // the store has it
				continue
			case f.file == at.File && f.start == at.Offset,
				f.start == 0 && replication.CompareBinlogNames(f.file, at.File) > 0 && at.Offset > 0:
			default:
				return fmt.Errorf("%w: spooled segment %s does not continue the archive of timeline %s, which ends at %s: the spool and the store disagree; keep the spool directory, run binarc verify and report it", archive.ErrFatal, f.path, tl, at)
			}
			checksums, ok := fileSums[f.file]
			if !ok {
				// Once per file: its format description is in the spool
				// or in the store's first segment of the file.
				if checksums, err = a.fileChecksums(ctx, tl, f.file, sp.files[i:j]); err != nil {
					return err
				}
				fileSums[f.file] = checksums
			}
			if err := a.replaySegment(ctx, lease, tl, f, checksums); err != nil {
				return err
			}
			sp.remove(f)
			at = end
			uploaded++
		}
		i = j
	}
	a.log.Info().Int("segments", uploaded).Str("spool_dir", sp.dir).Msg("spool replayed into the store")
	return nil
}

func (a *Archiver) replaySegment(ctx context.Context, lease *lease.Lease, tl string, f spoolFile, checksums bool) error {
	data, err := os.ReadFile(f.path)
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	plain, err := archive.DecodeSegment(data, f.end-f.start)
	if err == nil && uint64(len(plain)) != f.end-f.start {
		err = fmt.Errorf("%d bytes, its name says %d", len(plain), f.end-f.start)
	}
	if err == nil {
		err = checkSpooledEvents(plain, f.start, checksums)
	}
	if err != nil {
		return fmt.Errorf("%w: spooled segment %s is damaged (%v): it was fsynced before use, so the disk is failing or the file was changed; keep it and run binarc verify", archive.ErrFatal, f.path, err)
	}
	key := a.layout.SegmentKey(tl, f.file, f.start, f.end)
	_, err = untilUp(a, ctx, "object store", func() (struct{}, error) {
		if err := lease.Ensure(ctx); err != nil {
			return struct{}{}, err
		}
		_, err := a.store.Put(ctx, key, a.cfg.Sign.Sign(key, data), objstore.PutOptions{IfAbsent: true})
		if errors.Is(err, objstore.ErrExist) {
			got, _, rerr := objstore.ReadAtMost(ctx, a.store, key, archive.StoredBound(f.end-f.start))
			if rerr != nil {
				return struct{}{}, rerr
			}
			if theirs, derr := archive.DecodeSegment(got, f.end-f.start); derr != nil || !bytes.Equal(theirs, plain) {
				return struct{}{}, fmt.Errorf("%w: %s is in the store with other content than the spooled copy: run binarc verify", archive.ErrConflict, key)
			}
			return struct{}{}, nil
		}
		return struct{}{}, err
	})
	return err
}

// checkSpooledEvents checks what a spooled segment holds before it goes
// into the archive, as verify would check it there: whole events from its
// start to its end, each ending where its log_pos says (modulo 2^32), and
// a valid CRC32 on each when the file has checksums.
func checkSpooledEvents(plain []byte, start uint64, checksums bool) error {
	return replication.Events(plain, start, func(off uint64, h replication.Header, raw []byte) error {
		end := off + uint64(len(raw))
		if h.LogPos != uint32(end) {
			return fmt.Errorf("%s event at offset %d has log_pos %d, want %d", h.Type, off, h.LogPos, uint32(end))
		}
		if checksums && !replication.HasChecksum(raw) {
			return fmt.Errorf("CRC32 mismatch in the %s event at offset %d", h.Type, off)
		}
		return nil
	})
}

// fileChecksums tells whether file's events carry a CRC32, from its
// format description: in the spool (files, the segment at offset 0) or
// else in the store's first segment of the file.
func (a *Archiver) fileChecksums(ctx context.Context, tl, file string, files []spoolFile) (bool, error) {
	var fde []byte
	for _, f := range files {
		if f.file != file || f.start != 0 {
			continue
		}
		data, err := os.ReadFile(f.path)
		if errors.Is(err, os.ErrNotExist) {
			continue // removed by this replay: the store has it, and its start
		}
		if err != nil {
			return false, fmt.Errorf("spool: %w", err)
		}
		plain, err := archive.DecodeSegment(data, f.end)
		if err != nil {
			return false, fmt.Errorf("%w: spooled segment %s is damaged (%v); keep it and run binarc verify", archive.ErrFatal, f.path, err)
		}
		fde = firstEvent(plain)
	}
	if fde == nil {
		refs, err := untilUp(a, ctx, "object store", func() ([]archive.SegmentRef, error) { return a.cat.Segments(ctx, tl, file) })
		if err != nil {
			return false, err
		}
		if len(refs) == 0 || refs[0].Start != 0 {
			return false, fmt.Errorf("%w: the spool continues %s of timeline %s, but neither the spool nor the store holds its start: keep the spool directory and run binarc verify", archive.ErrFatal, file, tl)
		}
		facts, err := untilUp(a, ctx, "object store", func() (archive.SegmentFacts, error) { return a.cat.ReadSegmentFacts(ctx, refs[0]) })
		if err != nil {
			return false, err
		}
		fde = facts.FDE
	}
	return len(fde) > 0 && replication.HasChecksum(fde), nil
}

// firstEvent is the event after the magic of a file's first bytes.
func firstEvent(plain []byte) []byte {
	var first []byte
	_ = replication.Events(plain, 0, func(_ uint64, _ replication.Header, raw []byte) error {
		first = raw
		return errors.New("stop")
	})
	return first
}

// spoolSink spools each sealed segment, lets its transactions be
// acknowledged, and hands it to the uploader as it is. Segments keep the
// boundaries they have in the spool: a PUT the previous process had sent
// before it died may still land after the replay, and it then names the
// same object as the replayed copy (a conditional put of the same bytes)
// rather than an overlapping one.
type spoolSink struct {
	*Uploader // its SubmitFileEnd, WaitRoom and HasRoom as they are
	spool     *spool
	t         *ackTracker
}

func (s *spoolSink) SubmitSegment(seg *archive.Segment) error {
	if err := s.spool.write(seg); err != nil {
		return err
	}
	end := replication.Position{File: seg.File, Offset: seg.End}
	s.t.sealedTo(end)
	s.t.advance(end)
	s.t.send() // at once: the fsync was the wait
	return s.Uploader.SubmitSegment(seg)
}
