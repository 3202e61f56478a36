package objstore

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

var (
	_ StreamPutter  = (*Local)(nil)
	_ UploadSweeper = (*Local)(nil)
)

// PutStream copies r into a temp file beside the final name, fsyncs it and
// links (IfAbsent) or renames it into place, as Put does with a byte slice.
// On any failure the temp file is removed.
func (l *Local) PutStream(ctx context.Context, key string, r io.Reader, opts PutOptions) (ObjectInfo, error) {
	if opts.IfMatch != "" {
		return ObjectInfo{}, fmt.Errorf("local: put stream %s: IfMatch is not supported for streams", key)
	}
	path, err := l.path(key)
	if err != nil {
		return ObjectInfo{}, fmt.Errorf("local: put stream %s: %w", key, err)
	}
	if opts.IfAbsent {
		// Fail before copying what may be many GiB; the link below is what
		// decides, atomically.
		if _, err := os.Stat(path); err == nil {
			return ObjectInfo{}, fmt.Errorf("local: put stream %s: %w", key, ErrExist)
		}
	}
	tmp, size, etag, err := l.streamTemp(ctx, path, r)
	if err != nil {
		return ObjectInfo{}, fmt.Errorf("local: put stream %s: %w", key, err)
	}
	defer os.Remove(tmp)

	unlock, err := l.lock()
	if err != nil {
		return ObjectInfo{}, fmt.Errorf("local: put stream %s: %w", key, err)
	}
	defer unlock()
	if opts.IfAbsent {
		err = os.Link(tmp, path)
		if errors.Is(err, fs.ErrExist) {
			return ObjectInfo{}, fmt.Errorf("local: put stream %s: %w", key, ErrExist)
		}
	} else {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		return ObjectInfo{}, fmt.Errorf("local: put stream %s: %w", key, err)
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		return ObjectInfo{}, fmt.Errorf("local: put stream %s: %w", key, err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return ObjectInfo{}, fmt.Errorf("local: put stream %s: %w", key, err)
	}
	return ObjectInfo{Key: key, Size: size, ETag: etag, ModTime: fi.ModTime()}, nil
}

// streamTemp copies r into a fsynced temp file in the directory of path and
// returns its name, size and MD5.
func (l *Local) streamTemp(ctx context.Context, path string, r io.Reader) (name string, size int64, etag string, err error) {
	tmp, err := l.writeTemp(path, nil)
	if err != nil {
		return "", 0, "", err
	}
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		os.Remove(tmp)
		return "", 0, "", err
	}
	h := md5.New()
	size, err = io.Copy(io.MultiWriter(f, h), readerWithContext(ctx, r))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return "", 0, "", err
	}
	return tmp, size, hex.EncodeToString(h.Sum(nil)), nil
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
