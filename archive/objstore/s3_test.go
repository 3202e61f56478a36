package objstore_test

import (
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/binarc/binarc/archive/objstore"
	"github.com/binarc/binarc/archive/objstore/objstoretest"
	"github.com/binarc/binarc/integration/testenv"
)

// setS3Env points the SDK's default chain at srv, the way an operator's
// environment would.
func setS3Env(t *testing.T, srv *testenv.S3Server) {
	for _, kv := range srv.Env() {
		name, value, _ := strings.Cut(kv, "=")
		t.Setenv(name, value)
	}
}

func TestS3(t *testing.T) {
	srv := testenv.StartS3(t)
	setS3Env(t, srv)

	// Each subtest gets a bucket of its own and uses its root.
	t.Run("BucketRoot", func(t *testing.T) {
		objstoretest.Run(t, func(t *testing.T) objstore.Store {
			s, err := objstore.NewS3(t.Context(), objstore.S3Config{Bucket: srv.NewBucket(t)})
			if err != nil {
				t.Fatal(err)
			}
			return s
		})
	})

	// Each subtest gets its own prefix in one bucket, so keys must come back
	// without the prefix and List must not see the neighbours.
	t.Run("Prefixed", func(t *testing.T) {
		var n atomic.Int64
		objstoretest.Run(t, func(t *testing.T) objstore.Store {
			s, err := objstore.NewS3(t.Context(), objstore.S3Config{
				Bucket: srv.Bucket,
				Prefix: fmt.Sprintf("/binarc/test-%d/", n.Add(1)),
			})
			if err != nil {
				t.Fatal(err)
			}
			return s
		})
	})
}

func TestS3ExplicitConfig(t *testing.T) {
	srv := testenv.StartS3(t)
	// No environment: endpoint, region and credentials all come from the
	// config, as Open passes them.
	for _, name := range []string{"AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"} {
		t.Setenv(name, "")
	}
	s, err := objstore.NewS3(t.Context(), objstore.S3Config{
		Bucket:      srv.Bucket,
		Prefix:      "p",
		Endpoint:    srv.Endpoint,
		Region:      srv.Region,
		Credentials: credentials.NewStaticCredentialsProvider(srv.AccessKey, srv.SecretKey, ""),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CheckBucket(t.Context()); err != nil {
		t.Fatalf("CheckBucket: %v", err)
	}
	if _, err := s.Put(t.Context(), "k", []byte("v"), objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	got, err := srv.Client().HeadObject(t.Context(), headInput(srv.Bucket, "p/k"))
	if err != nil {
		t.Fatalf("object not at p/k in the bucket: %v", err)
	}
	if *got.ContentLength != 1 {
		t.Errorf("p/k is %d bytes, want 1", *got.ContentLength)
	}
	if want := "s3://" + srv.Bucket + "/p at " + srv.Endpoint; s.String() != want {
		t.Errorf("String() = %q, want %q", s.String(), want)
	}
}

func TestS3CheckBucketMissing(t *testing.T) {
	srv := testenv.StartS3(t)
	setS3Env(t, srv)
	s, err := objstore.NewS3(t.Context(), objstore.S3Config{Bucket: "binarc-no-such-bucket"})
	if err != nil {
		t.Fatal(err)
	}
	err = s.CheckBucket(t.Context())
	if !errors.Is(err, objstore.ErrNotExist) {
		t.Fatalf("CheckBucket on a missing bucket = %v, want ErrNotExist", err)
	}
	for _, want := range []string{`"binarc-no-such-bucket"`, srv.Endpoint, "aws s3 mb s3://binarc-no-such-bucket"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("CheckBucket error %q does not contain %q", err, want)
		}
	}

	// Open checks the bucket, so a missing one fails at start.
	_, err = objstore.Open(t.Context(), "s3://binarc-no-such-bucket/p")
	if !errors.Is(err, objstore.ErrNotExist) {
		t.Errorf("Open on a missing bucket = %v, want ErrNotExist", err)
	}
}

func TestS3CheckBucketBadCredentials(t *testing.T) {
	srv := testenv.StartS3(t)
	setS3Env(t, srv)
	t.Setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret-not-to-be-shown")
	s, err := objstore.NewS3(t.Context(), objstore.S3Config{Bucket: srv.Bucket})
	if err != nil {
		t.Fatal(err)
	}
	err = s.CheckBucket(t.Context())
	if err == nil {
		t.Fatal("CheckBucket with a wrong secret succeeded")
	}
	if !strings.Contains(err.Error(), "denied") || !strings.Contains(err.Error(), srv.Bucket) {
		t.Errorf("CheckBucket with a wrong secret = %v, want an access-denied error naming the bucket", err)
	}
	if strings.Contains(err.Error(), "wrong-secret-not-to-be-shown") {
		t.Errorf("CheckBucket error shows the secret: %v", err)
	}
}

// TestS3IfAbsentKeyCollision pins the error mapping for versitygw's posix
// backend, where a key cannot be both an object and a prefix: it answers
// 409 ObjectParentIsFile, which must not read as ErrExist (that is 412 or
// 409 ConditionalRequestConflict only). AWS S3 accepts such a Put.
func TestS3IfAbsentKeyCollision(t *testing.T) {
	srv := testenv.StartS3(t)
	setS3Env(t, srv)
	s, err := objstore.NewS3(t.Context(), objstore.S3Config{Bucket: srv.Bucket})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(t.Context(), "a", []byte("file"), objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err = s.Put(t.Context(), "a/b", []byte("below a file"), objstore.PutOptions{IfAbsent: true})
	if errors.Is(err, objstore.ErrExist) {
		t.Errorf("IfAbsent Put below an object = %v; nothing is at a/b, so not ErrExist", err)
	}
}

func TestOpenS3(t *testing.T) {
	srv := testenv.StartS3(t)
	setS3Env(t, srv)
	t.Setenv("AWS_ENDPOINT_URL_S3", "")
	url := srv.StoreURL("archive/x") + "?endpoint=" + srv.Endpoint + "&region=" + srv.Region + "&path_style=true"
	s, err := objstore.Open(t.Context(), url)
	if err != nil {
		t.Fatalf("Open(%q): %v", url, err)
	}
	if _, ok := s.(*objstore.S3); !ok {
		t.Fatalf("Open(%q) = %T, want *objstore.S3", url, s)
	}
	if _, err := s.Put(t.Context(), "k", []byte("v"), objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Client().HeadObject(t.Context(), headInput(srv.Bucket, "archive/x/k")); err != nil {
		t.Errorf("object not at archive/x/k: %v", err)
	}
}

func headInput(bucket, key string) *s3.HeadObjectInput {
	return &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}
}
