package objstore_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/binarc/binarc/archive/objstore"
	"github.com/binarc/binarc/archive/objstore/objstoretest"
)

// newLocal is a Local store in dir, which it creates.
func newLocal(t *testing.T, dir string) *objstore.Local {
	t.Helper()
	s, err := objstore.NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// tempLocal is a Local store in a new temporary folder: the suites' store.
func tempLocal(t *testing.T) objstore.Store { return newLocal(t, t.TempDir()) }

func TestLocal(t *testing.T) {
	objstoretest.Run(t, tempLocal)
}

func TestLocalSkipsTempLeftovers(t *testing.T) {
	dir := t.TempDir()
	s := newLocal(t, dir)
	ctx := t.Context()
	if _, err := s.Put(ctx, "d/real", []byte("r"), objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	// What a crash between temp write and rename leaves behind.
	for _, name := range []string{".tmp-123456", "d/.tmp-987654"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("torn"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for prefix, want := range map[string]string{"": "d/", "d/": "d/real"} {
		got, err := s.List(ctx, prefix)
		if err != nil {
			t.Fatalf("List(%q): %v", prefix, err)
		}
		if len(got) != 1 || got[0].Key != want {
			t.Errorf("List(%q) = %+v, want only %s (no .tmp-* or .lock)", prefix, got, want)
		}
	}
}

func TestLocalRejectsReservedKeys(t *testing.T) {
	s := tempLocal(t)
	for _, key := range []string{"", "/abs", "a//b", "a/", "../escape", "a/../../b", "./a", ".lock", "x/.tmp-1"} {
		if _, err := s.Put(t.Context(), key, []byte("x"), objstore.PutOptions{}); err == nil {
			t.Errorf("Put(%q) succeeded, want an invalid-key error", key)
		} else if !strings.Contains(err.Error(), "invalid key") {
			t.Errorf("Put(%q) = %v, want an invalid-key error", key, err)
		}
	}
}

func TestNewLocalOnRegularFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "not-a-dir")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := objstore.NewLocal(file)
	if err == nil {
		t.Fatal("NewLocal on a regular file succeeded")
	}
	if !strings.Contains(err.Error(), "not a directory") || !strings.Contains(err.Error(), file) {
		t.Errorf("NewLocal on a regular file = %v, want it to name the path and say it is not a directory", err)
	}
}

func TestNewLocalCreatesDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	s := newLocal(t, dir)
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		t.Fatalf("NewLocal did not create %s: %v", dir, err)
	}
	if s.Dir() != dir {
		t.Errorf("Dir() = %q, want %q", s.Dir(), dir)
	}
}
