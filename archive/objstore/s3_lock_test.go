package objstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

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
