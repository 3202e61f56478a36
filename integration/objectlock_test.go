package integration

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/binarc/binarc/archive/objstore"
)

// TestObjectLock: against versitygw with a bucket created with Object Lock
// enabled, binarc stream and snapshot with --object-lock-days put a
// governance retention on every object but the leases; a locked segment
// cannot be deleted, and a prune that would delete old binlog and an old
// snapshot keeps them, saying until when, and succeeds. A bucket without
// Object Lock is refused up front.
func TestObjectLock(t *testing.T) {
	t.Parallel()
	e := newSnapEnv(t)
	ctx := context.Background()
	plainStore := e.store
	bucket := "binarc-locked-" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-"))
	if _, err := e.s3.Client().CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket), ObjectLockEnabledForBucket: aws.Bool(true)}); err != nil {
		t.Fatalf("create a bucket with Object Lock: %v", err)
	}
	e.store = "s3://" + bucket + "/archive"
	lock := []string{"--object-lock-days", "1", "--object-lock-mode", "governance"}

	out, code := e.run(append([]string{"stream", "--source", e.primary.SourceURL(replUser, ""), "--store", plainStore, "--cluster", e.cluster}, lock...)...)
	if code != 2 || !strings.Contains(out, "has no Object Lock") {
		t.Errorf("Object Lock on a bucket without it (%d):\n%s", code, tail(out, 2000))
	}

	p := e.start(e.streamArgs(lock...)...)
	phase := func(from, to int) {
		if err := writeLoad(ctx, e.primary, loadOptions{From: from, To: to, FlushAt: 20}); err != nil {
			t.Fatal(err)
		}
	}
	phase(0, 40)
	e.caughtUpSnapshot(t, "first snapshot", physUser, lock...)
	phase(40, 80)
	// 24 MiB that zstd cannot shrink: the second snapshot's data goes up
	// in several parts, and gets its retention once complete.
	e.primary.Exec(t, "CREATE TABLE app.bulk (id INT PRIMARY KEY, b VARBINARY(1024)) ENGINE=InnoDB")
	for i := range 24 {
		e.primary.Exec(t, fmt.Sprintf("INSERT INTO app.bulk SELECT %d * 1024 + seq, RANDOM_BYTES(1024) FROM mysql.seq_1_to_1024", i))
	}
	e.caughtUpSnapshot(t, "second snapshot", physUser, lock...)
	if m := e.newest(); m.StoredSize < 20<<20 {
		t.Fatalf("the second snapshot stored %d bytes: too few for a multipart upload", m.StoredSize)
	}
	cutoff := time.Now()
	phase(80, 100)
	e.waitArchived(time.Minute)
	p.stop(t)

	cat := e.catalog()
	tls, err := cat.Timelines(ctx)
	if err != nil {
		t.Fatal(err)
	}
	files, err := cat.Files(ctx, tls[0])
	if err != nil {
		t.Fatal(err)
	}
	segs, err := cat.Segments(ctx, tls[0], files[0].Name)
	if err != nil || len(segs) == 0 {
		t.Fatalf("segments of %s: %v %v", files[0].Name, segs, err)
	}
	head := func(key string) *s3.HeadObjectOutput {
		t.Helper()
		out, err := e.s3.Client().HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("archive/" + key)})
		if err != nil {
			t.Fatalf("head %s: %v", key, err)
		}
		return out
	}
	for _, key := range []string{segs[0].Key, cat.Layout.IndexKey(tls[0], files[0].Name), cat.Layout.TimelineKey(tls[0]), e.newest().DataKey, cat.Layout.SnapshotManifestKey(e.newest().ID)} {
		h := head(key)
		if h.ObjectLockMode != types.ObjectLockModeGovernance || h.ObjectLockRetainUntilDate == nil ||
			h.ObjectLockRetainUntilDate.Before(time.Now().Add(23*time.Hour)) || h.ObjectLockRetainUntilDate.After(time.Now().Add(25*time.Hour)) {
			t.Errorf("%s: retention %s until %v, want governance for a day", key, h.ObjectLockMode, h.ObjectLockRetainUntilDate)
		}
	}
	if h := head(cat.Layout.LayoutKey()); h.ObjectLockMode != "" {
		t.Errorf("layout.json carries a retention (%s): binarc rewrites it", h.ObjectLockMode)
	}

	// A stolen credential cannot delete a segment.
	err = cat.Store.Delete(ctx, segs[0].Key)
	var le *objstore.LockedError
	if !errors.As(err, &le) || le.Until.Before(time.Now().Add(23*time.Hour)) || !strings.Contains(err.Error(), "until") {
		t.Fatalf("delete of a locked segment: %v", err)
	}
	if _, err := objstoreGet(ctx, cat.Store, segs[0].Key); err != nil {
		t.Fatalf("the locked segment is gone: %v", err)
	}

	// A prune that would delete the first snapshot and the binlog before
	// the second keeps them, and says until when.
	first := e.snapshots()[0].ID
	out, code = e.prune(cutoff)
	if code != 0 || !strings.Contains(out, "LOCKED") || !strings.Contains(out, "Object Lock") || !strings.Contains(out, "until") {
		t.Errorf("prune of locked objects (%d):\n%s", code, tail(out, 3000))
	}
	if _, err := objstoreGet(ctx, cat.Store, cat.Layout.SnapshotManifestKey(first)); err != nil {
		t.Errorf("the first snapshot's manifest went: %v", err)
	}
	if _, err := objstoreGet(ctx, cat.Store, segs[0].Key); err != nil {
		t.Errorf("the first segment went: %v", err)
	}
}

func objstoreGet(ctx context.Context, s objstore.Store, key string) ([]byte, error) {
	b, _, err := objstore.ReadAll(ctx, s, key)
	return b, err
}
