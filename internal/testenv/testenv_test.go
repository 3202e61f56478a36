package testenv

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/binarc/binarc/internal/procfs"
)

func TestCacheDir(t *testing.T) {
	t.Setenv("BINARC_CACHE", "/srv/cache")
	t.Setenv("HOME", "/home/ci")
	if got, err := CacheDir(); err != nil || got != "/srv/cache" {
		t.Errorf("with $BINARC_CACHE: CacheDir() = %q, %v; want /srv/cache", got, err)
	}
	t.Setenv("BINARC_CACHE", "")
	if got, err := CacheDir(); err != nil || got != "/home/ci/.cache/binarc" {
		t.Errorf("with $HOME only: CacheDir() = %q, %v; want /home/ci/.cache/binarc", got, err)
	}
}

func TestVersitygwPath(t *testing.T) {
	cache := t.TempDir()
	t.Setenv("BINARC_VERSITYGW", "")
	t.Setenv("BINARC_CACHE", cache)
	_, err := VersitygwPath()
	want := filepath.Join(cache, "bin", "versitygw-"+versitygwVersion)
	if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "make deps") {
		t.Fatalf("empty cache: VersitygwPath error %v; want one naming %s and make deps", err, want)
	}
	if err := os.MkdirAll(filepath.Dir(want), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(want, nil, 0o755); err != nil {
		t.Fatal(err)
	}
	if got, err := VersitygwPath(); err != nil || got != want {
		t.Errorf("VersitygwPath() = %q, %v; want %s", got, err, want)
	}
	t.Setenv("BINARC_VERSITYGW", filepath.Join(cache, "missing"))
	if _, err := VersitygwPath(); err == nil || !strings.Contains(err.Error(), "$BINARC_VERSITYGW") {
		t.Errorf("missing $BINARC_VERSITYGW: error %v, want one naming the variable", err)
	}
}

func TestProcess(t *testing.T) {
	// Stop returns the exit status: a shell that exits 3 on SIGTERM.
	p, err := StartProcess("sh", exec.Command("sh", "-c", "trap 'exit 3' TERM; while :; do sleep 0.01; done"))
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // let the shell set its trap
	var exit *exec.ExitError
	if err := p.Stop(syscall.SIGTERM, 10*time.Second); !errors.As(err, &exit) || exit.ExitCode() != 3 {
		t.Errorf("Stop = %v, want exit status 3", err)
	}
	if !p.Exited() {
		t.Error("Exited() = false after Stop")
	}

	// Kill takes the whole process group, so a forked child goes too.
	dir := t.TempDir()
	p, err = StartProcess("sh", exec.Command("sh", "-c", "sleep 60 & echo $! > "+filepath.Join(dir, "pid")+"; wait"))
	if err != nil {
		t.Fatal(err)
	}
	var childPid int
	for deadline := time.Now().Add(10 * time.Second); childPid == 0 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		b, _ := os.ReadFile(filepath.Join(dir, "pid"))
		childPid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
	}
	if childPid == 0 {
		t.Fatal("the shell did not report its child's pid")
	}
	p.Kill()
	<-p.Done()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		st, err := procfs.ReadStat(childPid)
		if err != nil || st.State == 'Z' {
			break // gone, or a zombie waiting for init
		}
		if time.Now().After(deadline) {
			t.Fatalf("the forked child %d outlived Kill", childPid)
		}
	}
}

func TestTailFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	if err := os.WriteFile(path, []byte("a\nb\nc\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := TailFile(path, 2); got != "b\nc" {
		t.Errorf("TailFile(2) = %q, want %q", got, "b\nc")
	}
	if got := TailFile(filepath.Join(t.TempDir(), "none"), 2); !strings.HasPrefix(got, "(cannot read") {
		t.Errorf("TailFile of a missing file = %q", got)
	}
}
