package restore

import (
	"bytes"
	"context"
	"encoding/binary"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/archive/objstore"
	"github.com/binarc/binarc/internal/testenv"
	"github.com/binarc/binarc/internal/xbstreamtest"
	"github.com/binarc/binarc/snapshot"
	"github.com/binarc/binarc/snapshot/snapshottest"
	"github.com/rs/zerolog"
)

// reachableDir is a temporary directory the sandbox user can reach.
func reachableDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := testenv.OpenToOthers(dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestPrepareSnapshotChecksDigest runs the real mbstream, as the sandbox
// user, on a snapshot whose stored object is cut, and on one whose digest
// is not the manifest's: the extraction is refused before --prepare (a
// stand-in that leaves a mark), and the directory is wiped.
func TestPrepareSnapshotChecksDigest(t *testing.T) {
	mbstream, err := findBinary("mariadb-backup", "mbstream")
	if err != nil {
		t.Fatal(err)
	}
	sb, err := NewSandbox(SandboxOptions{NoJail: true})
	if err != nil {
		t.Fatal(err)
	}
	root := reachableDir(t)
	mark := filepath.Join(root, "prepared")
	fake := filepath.Join(root, "fake-mariabackup")
	if err := os.WriteFile(fake, []byte("#!/bin/sh\ntouch "+mark+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(root, 0o777); err != nil { // the stand-in writes its mark as the sandbox user
		t.Fatal(err)
	}
	pt := physicalTools{mbstream: mbstream, backup: fake}
	l := archive.Layout{Cluster: "c"}
	ctx := context.Background()

	cases := map[string]func(mem *objstore.Memory, m *snapshot.Manifest){
		"good": func(*objstore.Memory, *snapshot.Manifest) {},
		"cut stream": func(mem *objstore.Memory, m *snapshot.Manifest) {
			data, _, _ := objstore.ReadAll(ctx, mem, m.DataKey)
			mem.Put(ctx, m.DataKey, data[:len(data)/2], objstore.PutOptions{})
		},
		"wrong digest": func(mem *objstore.Memory, m *snapshot.Manifest) {
			m.SHA256 = strings.Repeat("0", 64)
		},
	}
	for _, name := range []string{"good", "cut stream", "wrong digest"} {
		os.Remove(mark)
		mem := objstore.NewMemory()
		m := snapshottest.Store(t, mem, l, "20260101T000000Z-physical", realXbstream())
		cases[name](mem, m)
		dir := filepath.Join(root, strings.ReplaceAll(name, " ", "-"))
		if err := os.Mkdir(dir, 0o750); err != nil {
			t.Fatal(err)
		}
		if err := sb.Own(dir); err != nil {
			t.Fatal(err)
		}
		err := prepareSnapshot(ctx, sb, mem, m, nil, dir, pt, zerolog.Nop(), RestoreRequest{}.timed)
		_, statErr := os.Stat(mark)
		prepared := statErr == nil
		if name == "good" {
			if err != nil || !prepared {
				t.Fatalf("good snapshot: %v (prepared %v)", err, prepared)
			}
			if _, err := os.Stat(filepath.Join(dir, "ibdata1")); err != nil {
				t.Fatalf("good snapshot: not extracted: %v", err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), "extract snapshot") {
			t.Fatalf("%s: %v; want the extraction refused", name, err)
		}
		if prepared {
			t.Fatalf("%s: refused (%v), yet --prepare ran", name, err)
		}
		t.Logf("%s: %v", name, err)
		wipeDir(dir, true)
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Fatalf("%s: the directory is still there after the wipe", name)
		}
	}
}

// TestSandboxEnvironment: programs run on bucket content see none of
// binarc's secrets, run as an unprivileged user, and get the parent-death
// signal.
func TestSandboxEnvironment(t *testing.T) {
	t.Setenv("AWS_SECRET_ACCESS_KEY", "aws-secret-in-env")
	t.Setenv("BINARC_SOURCE_PASSWORD", "binarc-secret-in-env")
	sb, err := NewSandbox(SandboxOptions{NoJail: true})
	if err != nil {
		t.Fatal(err)
	}
	out, err := sb.Command(context.Background(), Paths{}, "/bin/sh", "-c", "env; echo uid=$(id -u); grep SigBlk /proc/self/status >/dev/null").CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	s := string(out)
	if strings.Contains(s, "secret-in-env") || strings.Contains(s, "AWS_") || strings.Contains(s, "BINARC_") {
		t.Fatalf("the sandboxed program sees binarc's environment:\n%s", s)
	}
	if strings.Contains(s, "uid=0\n") {
		t.Fatalf("the sandboxed program runs as root:\n%s", s)
	}
	cmd := sb.Command(context.Background(), Paths{}, "/bin/true")
	if cmd.SysProcAttr == nil || cmd.SysProcAttr.Pdeathsig == 0 {
		t.Fatal("no parent-death signal")
	}
	if os.Geteuid() == 0 && (cmd.SysProcAttr.Credential == nil || cmd.SysProcAttr.Credential.Uid == 0) {
		t.Fatal("as root, the sandboxed program keeps root's credentials")
	}
}

// realXbstream is a one-file xbstream the real mbstream accepts: chunks
// with their CRC32.
func realXbstream() []byte {
	payload := bytes.Repeat([]byte("data"), 50000)
	p := xbstreamtest.Chunk('P', "ibdata1", payload)
	at := 8 + 1 + 1 + 4 + len("ibdata1") + 8 + 8
	binary.LittleEndian.PutUint32(p[at:], crc32.ChecksumIEEE(payload))
	return append(p, xbstreamtest.Chunk('E', "ibdata1", nil)...)
}

// TestFetchCheckedDump: a logical snapshot reaches a server only from a
// private file whose digest matched; a wrong digest leaves no file.
func TestFetchCheckedDump(t *testing.T) {
	ctx := context.Background()
	l := archive.Layout{Cluster: "c"}
	mem := objstore.NewMemory()
	id := "20260101T000000Z-logical"
	m := snapshottest.Store(t, mem, l, id, []byte("CREATE DATABASE d;\n"))
	m.Method, m.DataKey = snapshot.Logical, l.SnapshotDataKey(id, archive.SnapshotDataLogical)
	data, _, _ := objstore.ReadAll(ctx, mem, l.SnapshotDataKey(id, archive.SnapshotDataPhysical))
	mem.Put(ctx, m.DataKey, data, objstore.PutOptions{})
	dir := t.TempDir()
	path, err := fetchCheckedDump(ctx, mem, m, nil, dir)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != "CREATE DATABASE d;\n" {
		t.Fatalf("dump file holds %q", b)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Fatalf("dump file mode %v; want 0600", st.Mode().Perm())
	}
	os.Remove(path)
	m.SHA256 = strings.Repeat("0", 64)
	if _, err := fetchCheckedDump(ctx, mem, m, nil, dir); err == nil || !strings.Contains(err.Error(), "SHA-256") {
		t.Fatalf("wrong digest: %v; want it refused", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("a refused dump left %v", ents)
	}
}

// TestSandboxNeedsUnprivilegedUser: run as root, binarc refuses to restore
// without the unprivileged user (and never runs the programs as root); run
// as another user, it runs them as that user.
func TestSandboxNeedsUnprivilegedUser(t *testing.T) {
	sb, err := newSandbox("binarc-no-such-user")
	if os.Geteuid() == 0 {
		if err == nil || !strings.Contains(err.Error(), "install mariadb-server") {
			t.Fatalf("as root without the user: %+v %v; want a refusal saying how to get one", sb, err)
		}
		if _, err := newSandbox("root"); err == nil {
			t.Fatal("as root, the sandbox accepted uid 0")
		}
		return
	}
	if err != nil || sb.Switch || int(sb.UID) != os.Geteuid() {
		t.Fatalf("as an unprivileged user: %+v %v; want programs run as that user", sb, err)
	}
}
