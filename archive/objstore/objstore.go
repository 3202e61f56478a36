// Package objstore is the small blob-store interface binarc writes its archive
// to, with an S3 implementation (aws-sdk-go-v2), a local-directory
// implementation (the embedded default) and an in-memory one for tests.
//
// The interface is deliberately dumb: keys are slash-separated strings, values
// are opaque bytes. Everything that knows what a key means lives in package
// archive. Retry policy lives in the backend (the SDK retryer for S3), never in
// callers.
package objstore

import (
	"context"
	"errors"
	"io"
	"time"
)

// Sentinel errors callers branch on. Implementations wrap them with context
// (backend, operation, key) so errors.Is works and the message says where.
var (
	// ErrNotExist: the object (or bucket/directory) does not exist.
	ErrNotExist = errors.New("object does not exist")
	// ErrExist: Put with IfAbsent found an object already at the key.
	ErrExist = errors.New("object already exists")
	// ErrPrecondition: Put with IfMatch found another version at the key
	// (or none at all).
	ErrPrecondition = errors.New("object changed since it was read (precondition failed)")
)

// ObjectInfo describes a stored object.
type ObjectInfo struct {
	Key     string
	Size    int64
	ETag    string // opaque version token, used with PutOptions.IfMatch
	ModTime time.Time
}

// Entry is one row of a List: an object, or a common prefix ("directory")
// when Dir is true, in which case Key ends with "/" and Size is 0.
type Entry struct {
	Key  string
	Dir  bool
	Size int64
}

// PutOptions makes a Put conditional. At most one of the fields may be set.
type PutOptions struct {
	// IfAbsent makes Put fail with ErrExist when any object is at the key.
	// Atomic: of two concurrent IfAbsent puts, exactly one succeeds.
	IfAbsent bool
	// IfMatch makes Put fail with ErrPrecondition unless the object at the
	// key currently has this ETag.
	IfMatch string
	// PartSize, for PutStream only, is the size of the parts a store that
	// uploads in parts holds in memory (S3: at least 5 MiB; 0: its default).
	// Smaller parts use less memory, larger ones fewer requests.
	PartSize int
}

// Store is the storage contract every backend implements and the
// conformance suite (objstoretest) checks.
type Store interface {
	// Put stores data at key, replacing any object there unless opts says
	// otherwise. The object is visible to Get and List only once Put returned
	// nil, and then whole.
	Put(ctx context.Context, key string, data []byte, opts PutOptions) (ObjectInfo, error)
	// Get opens the object at key for reading. A missing object gives an
	// error matching ErrNotExist. The caller closes the reader.
	Get(ctx context.Context, key string) (io.ReadCloser, ObjectInfo, error)
	// List returns what is directly below prefix, sorted by key: objects, and
	// deeper levels as Dir entries. prefix is "" or ends with "/". A prefix
	// with nothing below it gives an empty list and no error.
	List(ctx context.Context, prefix string) ([]Entry, error)
	// Delete removes the object at key. Deleting a missing object is not an
	// error.
	Delete(ctx context.Context, key string) error
	// PutStream stores an object of unknown length read from r to EOF,
	// without holding it whole in memory (a backup tool's output, hundreds
	// of GiB). The object is visible to Get and List only once PutStream
	// returned nil, and then whole. If r returns an error, or ctx ends,
	// before EOF, PutStream returns an error wrapping it, and nothing is at
	// key afterwards and nothing is left behind (no multipart upload, no
	// temp file) unless cleaning up itself failed, which the error says.
	// opts.IfAbsent fails with ErrExist when an object is already at key,
	// as Put does; IfMatch is not supported (a stream is a new object).
	PutStream(ctx context.Context, key string, r io.Reader, opts PutOptions) (ObjectInfo, error)
	// SweepUploads removes the unfinished streamed puts whose keys start
	// with prefix, left behind when a process died mid-way (an S3 multipart
	// upload, a temp file), and returns how many it removed. A job that owns
	// a prefix exclusively (it holds the lease for it) sweeps it at start.
	// A store that leaves nothing behind returns 0.
	SweepUploads(ctx context.Context, prefix string) (int, error)
	// String names the store for logs and errors, without credentials.
	String() string
}

// ReadAll reads a whole object. Convenience for small objects (indexes,
// manifests, leases).
func ReadAll(ctx context.Context, s Store, key string) ([]byte, ObjectInfo, error) {
	rc, info, err := s.Get(ctx, key)
	if err != nil {
		return nil, info, err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return nil, info, err
	}
	return b, info, nil
}
