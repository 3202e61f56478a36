package objstore_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/binarc/binarc/archive/objstore"
)

func TestOpenRejects(t *testing.T) {
	tests := []struct {
		url  string
		want []string // substrings of the error
	}{
		{"", []string{"empty", "s3://BUCKET/PREFIX", "file:///PATH"}},
		{"ftp://x", []string{`store URL "ftp://x"`, `unsupported scheme "ftp"`, "s3://BUCKET/PREFIX or file:///PATH or a directory path"}},
		{"gs://bucket/p", []string{`unsupported scheme "gs"`}},
		{"s3://", []string{`store URL "s3://"`, "no bucket"}},
		{"s3:///prefix", []string{"no bucket"}},
		{"s3:bucket/prefix", []string{"without \"//\"", "./s3:bucket/prefix"}},
		{"s3://bkt/p?endpoint=127.0.0.1:7070", []string{"endpoint", "not an http:// or https:// URL"}},
		{"s3://bkt/p?path_style=maybe", []string{"path_style", "true or false"}},
		{"s3://bkt/p?region=a&region=b", []string{`"region" given 2 times`}},
		{"s3://bkt/p?endpont=http://x", []string{`unknown parameter "endpont"`}},
		{"s3://AKIA:topsecret@bucket/p", []string{"credentials do not go in the URL"}},
		{"s3://AKIA:topsecret@bucket/p%zz", []string{`invalid URL escape "%zz"`, "s3://xxxxx@bucket"}},
		{"file://host/path", []string{`host "host"`, "file:///PATH"}},
		{"file://", []string{"file:///ABSOLUTE/PATH"}},
		{"://nothing", []string{"missing protocol scheme"}},
		{"s3://../x", []string{`bucket name ".."`, "3 to 63"}},
		{"s3://ab/x", []string{`bucket name "ab"`, "3 to 63"}},
		{"s3://My_Bucket/x", []string{`bucket name "My_Bucket"`, "lowercase"}},
		{"s3://-bucket/x", []string{`bucket name "-bucket"`, "starting and ending"}},
		{"s3://a..b/x", []string{`no ".."`}},
		{"s3://192.168.1.1/x", []string{"IP address"}},
		{"s3://bucket/a/../b", []string{`prefix "a/../b"`, "path segment"}},
		{"s3://bucket/a//b", []string{`prefix "a//b"`, "path segment"}},
		{"s3://bucket/./b", []string{`prefix "./b"`, "path segment"}},
		{"s3://bucket/a%0Ab", []string{"control character"}},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			s, err := objstore.Open(t.Context(), tt.url)
			if err == nil {
				t.Fatalf("Open(%q) = %v, want an error", tt.url, s)
			}
			for _, want := range tt.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Open(%q) error %q does not contain %q", tt.url, err, want)
				}
			}
			if strings.Contains(err.Error(), "topsecret") {
				t.Errorf("Open(%q) error %q shows the password", tt.url, err)
			}
		})
	}
}

func TestOpenLocal(t *testing.T) {
	base := t.TempDir()
	t.Chdir(base)
	tests := []struct {
		url  string
		want string // directory the store must be rooted at
	}{
		{"file://" + filepath.Join(base, "by-url"), filepath.Join(base, "by-url")},
		{"file://localhost" + filepath.Join(base, "by-localhost"), filepath.Join(base, "by-localhost")},
		{filepath.Join(base, "absolute"), filepath.Join(base, "absolute")},
		{"relative/dir", filepath.Join(base, "relative", "dir")},
		{"./with:colon", filepath.Join(base, "with:colon")},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			s, err := objstore.Open(t.Context(), tt.url)
			if err != nil {
				t.Fatalf("Open(%q): %v", tt.url, err)
			}
			local, ok := s.(*objstore.Local)
			if !ok {
				t.Fatalf("Open(%q) = %T, want *objstore.Local", tt.url, s)
			}
			if local.Dir() != tt.want {
				t.Errorf("Open(%q) rooted at %q, want %q", tt.url, local.Dir(), tt.want)
			}
			if _, err := s.Put(t.Context(), "x", []byte("x"), objstore.PutOptions{}); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(filepath.Join(tt.want, "x")); err != nil {
				t.Errorf("object not in %s: %v", tt.want, err)
			}
		})
	}
}

func TestOpenLocalOnFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := objstore.Open(t.Context(), "file://"+file)
	if err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("Open(file://%s) = %v, want a not-a-directory error", file, err)
	}
}
