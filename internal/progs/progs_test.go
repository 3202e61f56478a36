package progs

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFind: names are tried in order of preference, each on $PATH and
// then in the system directories before the next; only executable files
// count; OnPath never looks past $PATH.
func TestFind(t *testing.T) {
	root := t.TempDir()
	path, sbin, bin := filepath.Join(root, "path"), filepath.Join(root, "sbin"), filepath.Join(root, "bin")
	put := func(dir, name string, mode os.FileMode) string {
		t.Helper()
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"), mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	onPath := put(path, "mysqld", 0o755)
	inSbin := put(sbin, "mariadbd", 0o755)
	put(bin, "mariadbd", 0o755)
	put(path, "notexec", 0o644)
	put(sbin, "notexec", 0o644)
	if err := os.MkdirAll(filepath.Join(path, "adir"), 0o755); err != nil {
		t.Fatal(err)
	}
	inBin := put(bin, "mbstream", 0o755)
	t.Setenv("PATH", path)
	dirs := []string{sbin, bin}
	for _, c := range []struct {
		names []string
		dirs  []string
		want  string
	}{
		{[]string{"mysqld"}, dirs, onPath},
		{[]string{"mariadbd", "mysqld"}, dirs, inSbin},        // the preferred name in a system dir wins over the next on $PATH
		{[]string{"mariadbd", "mysqld"}, nil, onPath},         // $PATH only
		{[]string{"mbstream"}, dirs, inBin},                   // the second system dir
		{[]string{"notexec", "adir", "mysqld"}, dirs, onPath}, // not executable, a directory: skipped
		{[]string{"notexec", "adir", "mbstream"}, nil, ""},    // $PATH only: not found
		{[]string{"binarc-no-such-program"}, dirs, ""},
	} {
		got, err := find(c.names, c.dirs)
		if got != c.want || (err == nil) != (c.want != "") {
			t.Errorf("find(%v, %v) = %q, %v; want %q", c.names, c.dirs, got, err, c.want)
		}
		var nf *NotFoundError
		if c.want == "" && (!errors.As(err, &nf) || !strings.Contains(err.Error(), strings.Join(c.names, " or ")+" not found on $PATH")) {
			t.Errorf("find(%v): the error does not name the programs: %v", c.names, err)
		}
	}
	if p, err := OnPath("mariadbd"); err == nil {
		t.Errorf("OnPath found %s outside $PATH", p)
	}
	if _, err := Find("binarc-no-such-program"); err == nil || !strings.Contains(err.Error(), "in /usr/sbin or /usr/bin") {
		t.Errorf("Find's error does not say where it looked: %v", err)
	}
}

// TestOverride: an environment variable names the program, checked to be
// an executable file.
func TestOverride(t *testing.T) {
	dir := t.TempDir()
	exe, plain := filepath.Join(dir, "tool"), filepath.Join(dir, "plain")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(plain, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		value, want, err string
	}{
		{"", "", ""},
		{exe, exe, ""},
		{plain, "", "$BINARC_TEST_TOOL=" + plain},
		{filepath.Join(dir, "none"), "", "$BINARC_TEST_TOOL="},
	} {
		t.Setenv("BINARC_TEST_TOOL", c.value)
		got, err := Override("BINARC_TEST_TOOL")
		if got != c.want || (c.err == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), c.err) {
			t.Errorf("BINARC_TEST_TOOL=%q: %q, %v; want %q, %q", c.value, got, err, c.want, c.err)
		}
	}
}
