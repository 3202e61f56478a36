package lease

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"path"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/archive/objstore"
)

// ErrStoreIgnoresConditions means the store accepted a put it should have
// refused: it does not honour If-None-Match or If-Match.
var ErrStoreIgnoresConditions = errors.New("the store ignores conditional writes")

// CheckConditionalWrites proves, with a probe object beside key, that the
// store refuses a put-if-absent on an existing object and a put whose
// If-Match does not match. binarc's single-writer lease and its
// write-once segments rest on both: on a store that ignores them, two
// archivers would both "hold" the lease and one would overwrite the
// other's segments. The probe is deleted afterwards.
func CheckConditionalWrites(ctx context.Context, store objstore.Store, key string) (err error) {
	var idb [8]byte
	_, _ = rand.Read(idb[:])
	probe := path.Join(path.Dir(key), archive.ProbePrefix+hex.EncodeToString(idb[:])+".json")
	body := []byte(`{"probe":"binarc checks that the store honours conditional writes; safe to delete"}` + "\n")
	if _, err := store.Put(ctx, probe, body, objstore.PutOptions{IfAbsent: true}); err != nil {
		return fmt.Errorf("probe the store's conditional writes (%s): %w", probe, err)
	}
	defer func() {
		if derr := store.Delete(context.WithoutCancel(ctx), probe); derr != nil && err == nil {
			err = fmt.Errorf("delete probe %s: %w", probe, derr)
		}
	}()
	refuse := func(what string) error {
		return fmt.Errorf("%w: store %s accepted %s on %s: binarc's lease would not keep a second archiver out, and its segments could be overwritten; "+
			"refusing to write to it: use a store that supports conditional writes (AWS S3, MinIO, versitygw, a local directory)",
			ErrStoreIgnoresConditions, store, what, probe)
	}
	_, err = store.Put(ctx, probe, body, objstore.PutOptions{IfAbsent: true})
	switch {
	case err == nil:
		return refuse("a put-if-absent (If-None-Match: *) over an existing object")
	case !errors.Is(err, objstore.ErrExist):
		return fmt.Errorf("probe the store's conditional writes (%s): %w", probe, err)
	}
	_, err = store.Put(ctx, probe, body, objstore.PutOptions{IfMatch: `"binarc-probe-not-an-etag"`})
	switch {
	case err == nil:
		return refuse("a put with a wrong If-Match")
	case !errors.Is(err, objstore.ErrPrecondition):
		return fmt.Errorf("probe the store's conditional writes (%s): %w", probe, err)
	}
	return nil
}
