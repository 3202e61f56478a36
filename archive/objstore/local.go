package objstore

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
)

// Local is a Store in a local directory: key "a/b/c" is the file dir/a/b/c.
// It is the embedded default backend and is safe for concurrent use, also by
// several processes sharing the directory.
//
// Writes are crash-safe: data goes to a temp file (".tmp-*") beside the final
// name, is fsynced, then renamed (or hard-linked, for IfAbsent) into place and
// the directory fsynced. A crash leaves either the old object or the new one,
// plus at worst a ".tmp-*" leftover that List never shows.
//
// ETags are the hex MD5 of the content. Files are never modified in place, so
// an open reader keeps seeing the version it opened.
//
// Files are created mode 0600, since binlogs hold every row the server wrote;
// directories 0755.
//
// Unlike S3, a key cannot be both an object and a prefix ("a" and "a/b"): the
// file system has one name for both, so the second Put fails.
type Local struct {
	dir string
	// mu orders the mutations of this process; the flock on dir/.lock orders
	// them against other processes (flock does not exclude goroutines sharing
	// one process, hence both).
	mu sync.Mutex
}

var _ Store = (*Local)(nil)

const (
	localTempPrefix = ".tmp-"
	localLockName   = ".lock"
)

// NewLocal opens the local store rooted at dir, creating the directory if it
// is missing.
func NewLocal(dir string) (*Local, error) {
	if dir == "" {
		return nil, errors.New("local: empty directory path")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("local: %s: %w", dir, err)
	}
	fi, err := os.Stat(abs)
	switch {
	case err == nil && !fi.IsDir():
		return nil, fmt.Errorf("local: %s exists and is not a directory; point the store at a directory", abs)
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(abs, 0o755); err != nil {
			return nil, fmt.Errorf("local: create store directory: %w", err)
		}
	case err != nil:
		return nil, fmt.Errorf("local: %w", err)
	}
	return &Local{dir: abs}, nil
}

// Dir returns the absolute path of the store's root directory.
func (l *Local) Dir() string { return l.dir }

// String names the store as a file URL.
func (l *Local) String() string { return "file://" + filepath.ToSlash(l.dir) }

// Put writes data to key through a fsynced temp file, honouring opts.
func (l *Local) Put(ctx context.Context, key string, data []byte, opts PutOptions) (ObjectInfo, error) {
	if opts.IfAbsent && opts.IfMatch != "" {
		return ObjectInfo{}, fmt.Errorf("local: put %s: IfAbsent and IfMatch are mutually exclusive", key)
	}
	return l.put(ctx, "put", key, bytes.NewReader(data), opts)
}

// PutBuffers is Put of the concatenation of bufs, written from them as
// they are (see objstore.PutBuffers).
func (l *Local) PutBuffers(ctx context.Context, key string, bufs [][]byte, opts PutOptions) (ObjectInfo, error) {
	if opts.IfAbsent && opts.IfMatch != "" {
		return ObjectInfo{}, fmt.Errorf("local: put %s: IfAbsent and IfMatch are mutually exclusive", key)
	}
	return l.put(ctx, "put", key, NewBuffersReader(bufs), opts)
}

// put is Put and PutStream: it copies r into a fsynced temp file beside the
// final name, then, under the store's lock, links it into place (IfAbsent:
// link(2) fails atomically when the name is taken, which rename(2) would
// silently replace) or renames it (after checking IfMatch), and fsyncs the
// directory. op names the operation in errors.
func (l *Local) put(ctx context.Context, op, key string, r io.Reader, opts PutOptions) (ObjectInfo, error) {
	fail := func(err error) (ObjectInfo, error) { return ObjectInfo{}, fmt.Errorf("local: %s %s: %w", op, key, err) }
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	path, err := l.path(key)
	if err != nil {
		return fail(err)
	}
	if opts.IfAbsent {
		// Fail before copying what may be many GiB; the link below is what
		// decides, atomically.
		if _, err := os.Stat(path); err == nil {
			return fail(ErrExist)
		}
	}
	tmp, size, etag, err := l.writeTemp(ctx, path, r)
	if err != nil {
		return fail(err)
	}
	// After a successful link the temp name must go; after a rename it is
	// already gone and this is a harmless ENOENT.
	defer os.Remove(tmp)

	unlock, err := l.lock()
	if err != nil {
		return fail(err)
	}
	defer unlock()
	switch {
	case opts.IfAbsent:
		if err := os.Link(tmp, path); err != nil {
			if errors.Is(err, fs.ErrExist) {
				return fail(ErrExist)
			}
			return fail(err)
		}
	case opts.IfMatch != "":
		cur, err := fileETag(path)
		if errors.Is(err, fs.ErrNotExist) {
			return fail(fmt.Errorf("if-match %s: object missing: %w", opts.IfMatch, ErrPrecondition))
		}
		if err != nil {
			return fail(fmt.Errorf("read current version: %w", err))
		}
		if cur != opts.IfMatch {
			return fail(fmt.Errorf("if-match %s: current is %s: %w", opts.IfMatch, cur, ErrPrecondition))
		}
		fallthrough
	default:
		if err := os.Rename(tmp, path); err != nil {
			return fail(err)
		}
	}
	if err := SyncDir(filepath.Dir(path)); err != nil {
		return fail(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return fail(err)
	}
	return ObjectInfo{Key: key, Size: size, ETag: etag, ModTime: fi.ModTime()}, nil
}

// writeTemp copies r into a fsynced temp file in the directory of path,
// creating that directory if needed, and returns the temp file's name, size
// and MD5 (the ETag).
func (l *Local) writeTemp(ctx context.Context, path string, r io.Reader) (name string, size int64, etag string, err error) {
	dir := filepath.Dir(path)
	var f *os.File
	// A concurrent Delete may remove an emptied parent between our mkdir and
	// the create; a few attempts outlast any such race.
	for attempt := 0; ; attempt++ {
		if err := l.mkdirAll(dir); err != nil {
			return "", 0, "", err
		}
		f, err = os.CreateTemp(dir, localTempPrefix+"*")
		if err == nil {
			break
		}
		if !errors.Is(err, fs.ErrNotExist) || attempt == 3 {
			return "", 0, "", err
		}
	}
	name = f.Name()
	h := md5.New()
	size, err = io.Copy(io.MultiWriter(f, h), readerWithContext(ctx, r))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(name)
		return "", 0, "", err
	}
	return name, size, hex.EncodeToString(h.Sum(nil)), nil
}

// mkdirAll creates dir and its missing parents below the root, fsyncing the
// parent of each directory it creates so the new entries survive a crash.
func (l *Local) mkdirAll(dir string) error {
	if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
		return nil
	}
	if dir == l.dir {
		return fmt.Errorf("store directory %s is gone", l.dir)
	}
	parent := filepath.Dir(dir)
	if err := l.mkdirAll(parent); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return SyncDir(parent)
}

// Get opens the file at key. A missing file, or a directory, is ErrNotExist.
func (l *Local) Get(ctx context.Context, key string) (io.ReadCloser, ObjectInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, ObjectInfo{}, fmt.Errorf("local: get %s: %w", key, err)
	}
	path, err := l.path(key)
	if err != nil {
		return nil, ObjectInfo{}, fmt.Errorf("local: get %s: %w", key, err)
	}
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return nil, ObjectInfo{}, fmt.Errorf("local: get %s: %w", key, ErrNotExist)
		}
		return nil, ObjectInfo{}, fmt.Errorf("local: get %s: %w", key, err)
	}
	info, err := openedInfo(f, key)
	if err != nil {
		f.Close()
		return nil, ObjectInfo{}, fmt.Errorf("local: get %s: %w", key, err)
	}
	return f, info, nil
}

// openedInfo hashes the open file f for its ETag and rewinds it.
func openedInfo(f *os.File, key string) (ObjectInfo, error) {
	fi, err := f.Stat()
	if err != nil {
		return ObjectInfo{}, err
	}
	if !fi.Mode().IsRegular() {
		return ObjectInfo{}, fmt.Errorf("not a regular file: %w", ErrNotExist)
	}
	h := md5.New()
	if _, err := io.Copy(h, f); err != nil {
		return ObjectInfo{}, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return ObjectInfo{}, err
	}
	return ObjectInfo{Key: key, Size: fi.Size(), ETag: hex.EncodeToString(h.Sum(nil)), ModTime: fi.ModTime()}, nil
}

// fileETag is the hex MD5 of the file at path.
func fileETag(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	info, err := openedInfo(f, "")
	if err != nil {
		return "", err
	}
	return info.ETag, nil
}

// List reads the directory for prefix. Temp files and the lock file are
// skipped; subdirectories are Dir entries.
func (l *Local) List(ctx context.Context, prefix string) ([]Entry, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("local: list %s: %w", prefix, err)
	}
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		return nil, fmt.Errorf("local: list %s: prefix must be empty or end with \"/\"", prefix)
	}
	dir := l.dir
	if prefix != "" {
		p, err := l.path(strings.TrimSuffix(prefix, "/"))
		if err != nil {
			return nil, fmt.Errorf("local: list %s: %w", prefix, err)
		}
		dir = p
	}
	des, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return nil, nil
		}
		return nil, fmt.Errorf("local: list %s: %w", prefix, err)
	}
	var entries []Entry
	for _, de := range des {
		name := de.Name()
		if strings.HasPrefix(name, localTempPrefix) || name == localLockName {
			continue
		}
		switch {
		case de.IsDir():
			entries = append(entries, Entry{Key: prefix + name + "/", Dir: true})
		case de.Type().IsRegular():
			fi, err := de.Info()
			if errors.Is(err, fs.ErrNotExist) {
				continue // deleted since ReadDir
			}
			if err != nil {
				return nil, fmt.Errorf("local: list %s: %w", prefix, err)
			}
			entries = append(entries, Entry{Key: prefix + name, Size: fi.Size()})
		}
	}
	// ReadDir sorts by name, but "a/" must sort after "a-b" as keys do.
	sort.Slice(entries, func(i, j int) bool { return entries[i].Key < entries[j].Key })
	return entries, nil
}

// Delete removes the file at key and then any parent directories it left
// empty, so List does not show directories with nothing below them.
func (l *Local) Delete(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("local: delete %s: %w", key, err)
	}
	path, err := l.path(key)
	if err != nil {
		return fmt.Errorf("local: delete %s: %w", key, err)
	}
	unlock, err := l.lock()
	if err != nil {
		return fmt.Errorf("local: delete %s: %w", key, err)
	}
	defer unlock()
	// unlink(2), not os.Remove: a directory at key is not an object and must
	// not be removed.
	err = syscall.Unlink(path)
	switch {
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENOTDIR), errors.Is(err, syscall.EISDIR):
		return nil
	case err != nil:
		return fmt.Errorf("local: delete %s: %w", key, err)
	}
	dir := filepath.Dir(path)
	if err := SyncDir(dir); err != nil {
		return fmt.Errorf("local: delete %s: %w", key, err)
	}
	for dir != l.dir {
		// rmdir(2) fails on a non-empty directory, so a concurrent Put's temp
		// file keeps its directory alive.
		if err := syscall.Rmdir(dir); err != nil {
			break
		}
		dir = filepath.Dir(dir)
		if err := SyncDir(dir); err != nil {
			return fmt.Errorf("local: delete %s: %w", key, err)
		}
	}
	return nil
}

// path maps a key to its file, rejecting keys that would escape the root or
// collide with the store's own temp and lock files.
func (l *Local) path(key string) (string, error) {
	if err := checkLocalKey(key); err != nil {
		return "", err
	}
	return filepath.Join(l.dir, filepath.FromSlash(key)), nil
}

func checkLocalKey(key string) error {
	if key == "" {
		return errors.New("invalid key: empty")
	}
	if strings.IndexByte(key, 0) >= 0 {
		return errors.New("invalid key: contains NUL")
	}
	for _, part := range strings.Split(key, "/") {
		switch {
		case part == "":
			return errors.New("invalid key: empty path element (leading, trailing or double \"/\")")
		case part == "." || part == "..":
			return fmt.Errorf("invalid key: path element %q", part)
		case strings.HasPrefix(part, localTempPrefix) || part == localLockName:
			return fmt.Errorf("invalid key: path element %q is reserved by the local store", part)
		}
	}
	return nil
}

// lock takes the store's mutation lock: the in-process mutex, then an
// exclusive flock on dir/.lock for other processes.
func (l *Local) lock() (unlock func(), err error) {
	l.mu.Lock()
	f, err := os.OpenFile(filepath.Join(l.dir, localLockName), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		l.mu.Unlock()
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		l.mu.Unlock()
		return nil, fmt.Errorf("flock %s: %w", f.Name(), err)
	}
	return func() {
		// Closing the descriptor releases the flock.
		f.Close()
		l.mu.Unlock()
	}, nil
}

// SyncDir fsyncs a directory so renames, links and removals in it are
// durable (the local store, binlog fetch and the semi-sync spool).
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("fsync directory %s: %w", dir, err)
	}
	return nil
}
