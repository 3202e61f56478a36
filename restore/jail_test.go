package restore

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/archive/objstore"
	"github.com/rs/zerolog"
)

// TestMain lets this test binary be the jail's helper, as binarc is:
// the sandbox re-executes os.Executable() with JailCommand.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == JailCommand {
		os.Exit(RunJail())
	}
	os.Exit(m.Run())
}

// TestJailConfines runs a shell in the jail, as root would for a restore:
// it writes in its writable directory and nowhere else (a directory open
// to everyone on the host stays untouched), runs as the sandbox user with
// no_new_privs, does not see /root, has no network but its own loopback,
// and its mounts never reach the host.
func TestJailConfines(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the jail needs root")
	}
	sb, err := NewSandbox(SandboxOptions{Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	if !sb.Jailed {
		t.Fatal("as root, the sandbox is not jailed")
	}
	root := reachableDir(t)
	inside, outside := filepath.Join(root, "inside"), filepath.Join(root, "outside")
	for _, d := range []string{inside, outside} {
		if err := os.Mkdir(d, 0o777); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(d, 0o777); err != nil {
			t.Fatal(err)
		}
	}
	secret := filepath.Join("/root", "binarc-jail-test-"+filepath.Base(root))
	if err := os.WriteFile(secret, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(secret)
	script := `touch "$1/ok"; touch "$2/bad" 2>/dev/null && echo wrote-outside; touch /tmp/binarc-jail-bad 2>/dev/null && echo wrote-tmp
ls -a /root | grep -q binarc-jail-test && echo sees-root
grep NoNewPrivs /proc/self/status; echo uid=$(id -u)
echo ifaces=$(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | tr '\n' ,)`
	// Named through a symbolic link, as a --datadir may be.
	link := filepath.Join(root, "link")
	if err := os.Symlink(inside, link); err != nil {
		t.Fatal(err)
	}
	cmd := sb.Command(context.Background(), Paths{Writable: []string{link}}, "/bin/sh", "-c", script, "sh", inside, outside)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("jailed shell: %v: %s", err, out)
	}
	s := string(out)
	for _, bad := range []string{"wrote-outside", "wrote-tmp", "sees-root", "uid=0\n"} {
		if strings.Contains(s, bad) {
			t.Errorf("jailed shell: %s:\n%s", bad, s)
		}
	}
	if !strings.Contains(s, "ifaces=lo,\n") {
		t.Errorf("the jailed shell sees network interfaces besides its own loopback:\n%s", s)
	}
	if !strings.Contains(s, "NoNewPrivs:\t1") {
		t.Errorf("jailed shell without no_new_privs:\n%s", s)
	}
	if _, err := os.Stat(filepath.Join(inside, "ok")); err != nil {
		t.Errorf("the jailed shell could not write in its own directory: %v\n%s", err, s)
	}
	if _, err := os.Stat(filepath.Join(outside, "bad")); err == nil {
		t.Error("the jailed shell wrote outside its directory")
	}
	os.Remove("/tmp/binarc-jail-bad")
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(mi), inside) {
		t.Errorf("the jail's bind mount of %s reached the host's mount namespace", inside)
	}
}

// readCounter is a store that counts reads.
type readCounter struct {
	objstore.Store
	reads atomic.Int64
}

func (s *readCounter) Get(ctx context.Context, key string) (io.ReadCloser, objstore.ObjectInfo, error) {
	s.reads.Add(1)
	return s.Store.Get(ctx, key)
}

func (s *readCounter) List(ctx context.Context, prefix string) ([]objstore.Entry, error) {
	s.reads.Add(1)
	return s.Store.List(ctx, prefix)
}

// TestRestoreChecksDatadirFirst: a --datadir the sandbox user cannot
// reach is refused before anything is read from the store, naming the
// directory in the way and the fix.
func TestRestoreChecksDatadirFirst(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the sandbox user differs from binarc's only as root")
	}
	closed := t.TempDir() // 0700, root's
	store := &readCounter{Store: objstore.NewMemory()}
	_, err := Restore(context.Background(), RestoreRequest{Store: store, Layout: archive.Layout{Cluster: "c"},
		Target: Target{Kind: TargetLatest}, Datadir: filepath.Join(closed, "data"), WorkDir: t.TempDir(), Log: zerolog.Nop()})
	if err == nil || !strings.Contains(err.Error(), "--datadir") || !strings.Contains(err.Error(), "chmod o+x") {
		t.Fatalf("restore into an unreachable directory: %v; want a refusal naming --datadir and the fix", err)
	}
	if n := store.reads.Load(); n != 0 {
		t.Fatalf("the store was read %d times before the refusal", n)
	}
}
