package objstore

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

func TestS3WriteOptions(t *testing.T) {
	ctx := context.Background()
	s, err := NewS3(ctx, S3Config{Bucket: "b", Endpoint: "http://127.0.0.1:1", Region: "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		o    S3WriteOptions
		want string
	}{
		{S3WriteOptions{SSE: "rot13"}, "use aws:kms or AES256"},
		{S3WriteOptions{SSE: "AES256", SSEKMSKeyID: "k"}, "goes with --sse aws:kms"},
		{S3WriteOptions{LockDays: -1}, "must be 0"},
		{S3WriteOptions{LockDays: 3, LockMode: "forever"}, "use governance"},
	} {
		if err := s.SetWriteOptions(ctx, c.o); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.o, err, c.want)
		}
	}
	if err := s.SetWriteOptions(ctx, S3WriteOptions{SSE: "aws:kms", SSEKMSKeyID: "alias/binarc"}); err != nil {
		t.Fatal(err)
	}
	in := &s3.PutObjectInput{}
	s.applyPut(in, "c/binlog/x")
	if in.ServerSideEncryption != types.ServerSideEncryptionAwsKms || *in.SSEKMSKeyId != "alias/binarc" || in.ObjectLockMode != "" {
		t.Fatalf("put input %+v", in)
	}

	// Retention only on the keys Lock accepts.
	s.write = S3WriteOptions{LockDays: 2, LockMode: "compliance", Lock: func(k string) bool { return !strings.HasSuffix(k, "lease.json") }}
	in = &s3.PutObjectInput{}
	s.applyPut(in, "c/binlog/tl/f/0-1.zst")
	if in.ObjectLockMode != types.ObjectLockModeCompliance || in.ObjectLockRetainUntilDate == nil ||
		time.Until(*in.ObjectLockRetainUntilDate) < 47*time.Hour || in.ChecksumAlgorithm == "" {
		t.Fatalf("locked put input %+v", in)
	}
	in = &s3.PutObjectInput{}
	s.applyPut(in, "c/lease.json")
	if in.ObjectLockMode != "" {
		t.Fatal("a lease got a retention")
	}
}

func TestLockedError(t *testing.T) {
	until := time.Date(2026, 12, 3, 4, 5, 6, 0, time.UTC)
	err := fmt.Errorf("s3: delete: %w", &LockedError{Key: "c/x", Mode: "GOVERNANCE", Until: until})
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "c/x is under Object Lock (governance) until 2026-12-03T04:05:06Z") {
		t.Fatalf("%v", err)
	}
}

// versionedBucket is an S3 endpoint that answers as a versioned Object
// Lock bucket does: HEAD gives an object's version id and its retention,
// and a DELETE without a version id "succeeds" by adding a delete marker.
// It records the requests it gets.
type versionedBucket struct {
	mu       sync.Mutex
	requests []string
	until    map[string]time.Time // key → retention
	deleted  []string             // key?versionId
	markers  []string             // keys hidden under a delete marker
}

func (b *versionedBucket) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	defer b.mu.Unlock()
	key := strings.TrimPrefix(r.URL.Path, "/bkt/")
	b.requests = append(b.requests, r.Method+" "+key)
	until, ok := b.until[key]
	switch r.Method {
	case http.MethodHead:
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		w.Header().Set("x-amz-version-id", "v-"+key)
		w.Header().Set("Content-Length", "1")
		if !until.IsZero() {
			w.Header().Set("x-amz-object-lock-mode", "GOVERNANCE")
			w.Header().Set("x-amz-object-lock-retain-until-date", until.UTC().Format(time.RFC3339))
		}
		w.WriteHeader(http.StatusOK)
	case http.MethodDelete:
		if v := r.URL.Query().Get("versionId"); v != "" {
			b.deleted = append(b.deleted, key+"?"+v)
		} else {
			b.markers = append(b.markers, key)
		}
		w.WriteHeader(http.StatusNoContent)
	default:
		w.WriteHeader(http.StatusNotImplemented)
	}
}

// TestS3DeleteOnVersionedLockBucket: on a versioned Object Lock bucket a
// delete never puts a marker over a locked object (it is refused, naming
// until when, and no DELETE is sent), an unlocked object is deleted by its
// version id (its data goes, no marker), and a missing key is no error.
func TestS3DeleteOnVersionedLockBucket(t *testing.T) {
	b := &versionedBucket{until: map[string]time.Time{
		"p/locked": time.Now().Add(24 * time.Hour),
		"p/free":   {},
	}}
	srv := httptest.NewServer(b)
	defer srv.Close()
	s, err := NewS3(t.Context(), S3Config{Bucket: "bkt", Prefix: "p", Endpoint: srv.URL, Region: "us-east-1", PathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider("AKIAEXAMPLE", "secret", "")})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Delete(t.Context(), "locked")
	var le *LockedError
	if !errors.As(err, &le) || !strings.Contains(err.Error(), "until") {
		t.Fatalf("delete of a locked object: %v, want a LockedError", err)
	}
	if err := s.Delete(t.Context(), "free"); err != nil {
		t.Fatalf("delete of an unlocked object: %v", err)
	}
	if err := s.Delete(t.Context(), "gone"); err != nil {
		t.Fatalf("delete of a missing object: %v", err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.markers) != 0 {
		t.Errorf("delete markers put over %v (requests %v)", b.markers, b.requests)
	}
	if want := []string{"p/free?v-p/free"}; !slices.Equal(b.deleted, want) {
		t.Errorf("versions deleted %v, want %v (requests %v)", b.deleted, want, b.requests)
	}
}
