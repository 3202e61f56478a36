package objstore_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/binarc/binarc/archive/objstore"
	"github.com/binarc/binarc/archive/objstore/objstoretest"
	"github.com/binarc/binarc/integration/testenv"
)

func TestMemoryStream(t *testing.T) {
	objstoretest.RunStream(t, func(t *testing.T) objstore.Store { return objstore.NewMemory() }, nil)
}

// TestFaultyStream: the fault-injection wrapper passes streams and sweeps
// through, so tests through it take the paths production takes.
func TestFaultyStream(t *testing.T) {
	objstoretest.RunStream(t, func(t *testing.T) objstore.Store { return objstore.NewFaulty(objstore.NewMemory()) }, nil)
}

func TestLocalStream(t *testing.T) {
	objstoretest.RunStream(t, tempLocal, func(t *testing.T, s objstore.Store) {
		t.Helper()
		_ = filepath.WalkDir(s.(*objstore.Local).Dir(), func(p string, d fs.DirEntry, err error) error {
			if err == nil && strings.HasPrefix(d.Name(), ".tmp-") {
				t.Errorf("temp file left behind: %s", p)
			}
			return nil
		})
	})
}

func TestS3Stream(t *testing.T) {
	srv := testenv.StartS3(t)
	setS3Env(t, srv)
	objstoretest.RunStream(t, func(t *testing.T) objstore.Store {
		s, err := objstore.NewS3(t.Context(), objstore.S3Config{Bucket: srv.NewBucket(t), Prefix: "p"})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}, func(t *testing.T, s objstore.Store) {
		t.Helper()
		bucket := strings.TrimPrefix(strings.Fields(s.String())[0], "s3://")
		bucket, _, _ = strings.Cut(bucket, "/")
		out, err := srv.Client().ListMultipartUploads(t.Context(), &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket)})
		if err != nil {
			t.Fatalf("ListMultipartUploads: %v", err)
		}
		for _, u := range out.Uploads {
			t.Errorf("multipart upload left behind: %s (id %s)", aws.ToString(u.Key), aws.ToString(u.UploadId))
		}
	})
}

// TestS3SweepUploads leaves a multipart upload behind, as a binarc killed
// mid-stream does, and sweeps it.
func TestS3SweepUploads(t *testing.T) {
	srv := testenv.StartS3(t)
	setS3Env(t, srv)
	s, err := objstore.NewS3(t.Context(), objstore.S3Config{Bucket: srv.Bucket, Prefix: "p"})
	if err != nil {
		t.Fatal(err)
	}
	c := srv.Client()
	for _, key := range []string{"p/c/snapshot/1/data", "p/other/x"} {
		if _, err := c.CreateMultipartUpload(t.Context(), &s3.CreateMultipartUploadInput{Bucket: aws.String(srv.Bucket), Key: aws.String(key)}); err != nil {
			t.Fatal(err)
		}
	}
	n, err := s.SweepUploads(t.Context(), "c/snapshot/")
	if err != nil || n != 1 {
		t.Fatalf("SweepUploads = %d, %v; want 1 upload swept", n, err)
	}
	out, err := c.ListMultipartUploads(t.Context(), &s3.ListMultipartUploadsInput{Bucket: aws.String(srv.Bucket)})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Uploads) != 1 || aws.ToString(out.Uploads[0].Key) != "p/other/x" {
		t.Errorf("after the sweep: %d uploads; want only p/other/x, outside the prefix", len(out.Uploads))
	}
}

// TestLocalSweepUploads removes the temp files a killed put leaves, below
// the prefix only.
func TestLocalSweepUploads(t *testing.T) {
	dir := t.TempDir()
	s := newLocal(t, dir)
	for _, p := range []string{"c/snapshot/1/.tmp-123", "other/.tmp-456"} {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte("torn"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	n, err := s.SweepUploads(t.Context(), "c/snapshot/")
	if err != nil || n != 1 {
		t.Fatalf("SweepUploads = %d, %v; want 1", n, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "other", ".tmp-456")); err != nil {
		t.Errorf("a temp file outside the prefix was swept: %v", err)
	}
	if n, err := s.SweepUploads(t.Context(), "absent/"); err != nil || n != 0 {
		t.Errorf("SweepUploads of a missing prefix = %d, %v", n, err)
	}
}
