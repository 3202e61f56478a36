package main

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/archive/objstore"
	"github.com/binarc/binarc/internal/testenv"
)

// archiveWatch reads the archive the way a restore would see it: a file's
// durable size is the end of the contiguous run of segments from offset 0,
// or the size in its index once the file is complete.
type archiveWatch struct {
	cat      archive.Catalog
	timeline string            // newest timeline, once there is one
	indexed  map[string]uint64 // size of files whose index was read
}

func newArchiveWatch(ctx context.Context, s *testenv.S3Server, prefix, cluster string) (*archiveWatch, error) {
	st, err := objstore.NewS3(ctx, objstore.S3Config{
		Bucket: s.Bucket, Prefix: prefix, Endpoint: s.Endpoint, Region: s.Region, PathStyle: true,
		Credentials: s.Credentials(),
	})
	if err != nil {
		return nil, err
	}
	return &archiveWatch{
		cat:     archive.Catalog{Store: st, Layout: archive.Layout{Cluster: cluster}},
		indexed: map[string]uint64{},
	}, nil
}

// findTimeline waits for the archiver's first timeline.
func (w *archiveWatch) findTimeline(ctx context.Context) (bool, error) {
	if w.timeline != "" {
		return true, nil
	}
	tls, err := w.cat.Timelines(ctx)
	if err != nil || len(tls) == 0 {
		return false, err
	}
	w.timeline = tls[len(tls)-1]
	return true, nil
}

// segmentEnd is the end of the contiguous run of segments from offset 0,
// and the compressed bytes of the segments in it.
func (w *archiveWatch) segmentEnd(ctx context.Context, file string) (end uint64, stored int64, segments int, err error) {
	segs, err := w.cat.Segments(ctx, w.timeline, file)
	if err != nil {
		return 0, 0, 0, err
	}
	sort.Slice(segs, func(i, j int) bool { return segs[i].Start < segs[j].Start })
	for _, s := range segs {
		if s.Start != end {
			break
		}
		end = s.End
		stored += s.StoredSize
		segments++
	}
	return end, stored, segments, nil
}

// durableSize is file's archived size: its index's size once indexed (the
// index is only read once), else the contiguous segment end.
func (w *archiveWatch) durableSize(ctx context.Context, file string, indexed bool) (uint64, error) {
	if size, ok := w.indexed[file]; ok {
		return size, nil
	}
	if indexed {
		ix, err := w.cat.ReadIndex(ctx, w.timeline, file)
		if err == nil {
			w.indexed[file] = ix.Size
			return ix.Size, nil
		}
		if !errors.Is(err, objstore.ErrNotExist) {
			return 0, err
		}
	}
	end, _, _, err := w.segmentEnd(ctx, file)
	return end, err
}

// archivedBytes sums the durable sizes of files, capped at each file's size.
func (w *archiveWatch) archivedBytes(ctx context.Context, files []binlogFile) (uint64, error) {
	ok, err := w.findTimeline(ctx)
	if err != nil || !ok {
		return 0, err
	}
	refs, err := w.cat.Files(ctx, w.timeline)
	if err != nil {
		return 0, err
	}
	indexed := map[string]bool{}
	for _, r := range refs {
		indexed[r.Name] = r.Indexed
	}
	var total uint64
	for _, f := range files {
		size, err := w.durableSize(ctx, f.Name, indexed[f.Name])
		if err != nil {
			return 0, err
		}
		total += min(size, f.Size)
	}
	return total, nil
}

// storedBytes sums the compressed size of every segment of files.
func (w *archiveWatch) storedBytes(ctx context.Context, files []binlogFile) (stored int64, segments int, err error) {
	for _, f := range files {
		_, s, n, err := w.segmentEnd(ctx, f.Name)
		if err != nil {
			return 0, 0, err
		}
		stored += s
		segments += n
	}
	return stored, segments, nil
}

// progressPoint is the archived byte count seen at a time.
type progressPoint struct {
	Seconds float64 `json:"seconds"` // since the archiver started
	Bytes   uint64  `json:"bytes"`
}

// waitArchived polls until every byte of files is archived, recording the
// progress, or fails after timeout. exited reports an archiver that died.
func (w *archiveWatch) waitArchived(ctx context.Context, files []binlogFile, started time.Time, timeout time.Duration, exited func() error) ([]progressPoint, error) {
	want := totalSize(files)
	var progress []progressPoint
	var last uint64
	ticker := time.NewTicker(50 * time.Millisecond)
	defer ticker.Stop()
	deadline := time.After(timeout)
	for {
		select {
		case <-ctx.Done():
			return progress, ctx.Err()
		case <-deadline:
			return progress, fmt.Errorf("archive holds %d of %d bytes after %v", last, want, timeout)
		case <-ticker.C:
		}
		if err := exited(); err != nil {
			return progress, err
		}
		got, err := w.archivedBytes(ctx, files)
		if err != nil {
			return progress, fmt.Errorf("poll the archive: %w", err)
		}
		if got != last {
			progress = append(progress, progressPoint{Seconds: time.Since(started).Seconds(), Bytes: got})
			last = got
		}
		if got == want {
			return progress, nil
		}
	}
}

// watchLossWindow polls the segment folders of the files that pending
// samples are in every interval, and stamps each sample with the first
// time a poll (its LIST returned) saw the archive cover its position. It
// returns when done is closed and every sample is stamped, or after grace
// past done.
func (w *archiveWatch) watchLossWindow(ctx context.Context, samples *sampleSet, interval time.Duration, done <-chan struct{}, grace time.Duration) error {
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	var giveUp <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-giveUp:
			return fmt.Errorf("%d commits not archived %v after the load ended", samples.pendingCount(), grace)
		case <-done:
			done = nil
			giveUp = time.After(grace)
		case <-ticker.C:
		}
		for _, file := range samples.pendingFiles() {
			end, _, _, err := w.segmentEnd(ctx, file)
			if err != nil {
				return fmt.Errorf("poll the archive: %w", err)
			}
			samples.markDurable(file, end, time.Now())
		}
		if done == nil && samples.pendingCount() == 0 {
			return nil
		}
	}
}
