package objstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// PutStream copies r into a temp file beside the final name, fsyncs it and
// links (IfAbsent) or renames it into place, as Put does with a byte slice.
// On any failure the temp file is removed.
func (l *Local) PutStream(ctx context.Context, key string, r io.Reader, opts PutOptions) (ObjectInfo, error) {
	if opts.IfMatch != "" {
		return ObjectInfo{}, fmt.Errorf("local: put stream %s: IfMatch is not supported for streams", key)
	}
	return l.put(ctx, "put stream", key, r, opts)
}

// SweepUploads removes the temp files that a PutStream (or Put) killed
// mid-way left in the directories below prefix. Only a process that owns
// prefix exclusively may call it: a running put's temp file looks the same.
func (l *Local) SweepUploads(ctx context.Context, prefix string) (int, error) {
	root := l.dir
	if p := strings.TrimSuffix(prefix, "/"); p != "" {
		var err error
		if root, err = l.path(p); err != nil {
			return 0, fmt.Errorf("local: sweep %s: %w", prefix, err)
		}
	}
	n := 0
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !d.IsDir() && strings.HasPrefix(d.Name(), localTempPrefix) {
			if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			n++
		}
		return nil
	})
	if err != nil {
		return n, fmt.Errorf("local: sweep %s: %w", prefix, err)
	}
	return n, nil
}
