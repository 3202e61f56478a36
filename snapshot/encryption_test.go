package snapshot

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os/exec"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/archive/crypt"
	"github.com/binarc/binarc/archive/objstore"
	"github.com/klauspost/compress/zstd"
)

// TestEncryptedSnapshotData streams a tool's output through zstd and age
// into the store, and reads it back: with the identity it is the tool's
// output; without, or with the object replaced, it is refused.
func TestEncryptedSnapshotData(t *testing.T) {
	ctx := context.Background()
	key, _ := age.GenerateX25519Identity()
	sealer, err := crypt.NewSealer([]string{key.Recipient().String()})
	if err != nil {
		t.Fatal(err)
	}
	const marker = "INSERT INTO t VALUES ('very-secret-marker')"
	want := strings.Repeat(marker+";\n", 20000)
	mem := objstore.NewMemory()
	layout := archive.Layout{Cluster: "c"}
	id := "20261125T031500Z-logical"
	dataKey := layout.SnapshotDataKey(id, archive.SnapshotDataLogical)
	p := &pipeline{sealer: sealer, cmd: exec.Command("sh", "-c", `yes "$0;" | head -n 20000`, marker)}
	res, err := p.run(ctx, mem, dataKey)
	if err != nil {
		t.Fatal(err)
	}
	stored, _, err := objstore.ReadAll(ctx, mem, dataKey)
	if err != nil {
		t.Fatal(err)
	}
	if !crypt.IsSealed(stored) || bytes.Contains(stored, []byte("very-secret")) {
		t.Fatal("the data object is not encrypted")
	}
	m := &Manifest{Version: ManifestVersion, ID: id, Method: Logical, DataKey: dataKey, RawSize: res.RawSize,
		StoredSize: res.StoredSize, SHA256: res.SHA256, Encryption: archive.EncryptionOf(sealer)}
	if _, err := mem.Put(ctx, layout.SnapshotManifestKey(id), MarshalManifest(m), objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}

	read := func(o *crypt.Opener) (string, error) {
		rc, _, err := mem.Get(ctx, m.DataKey)
		if err != nil {
			return "", err
		}
		defer rc.Close()
		src, err := OpenData(rc, m, o)
		if err != nil {
			return "", err
		}
		dec, err := zstd.NewReader(src)
		if err != nil {
			return "", err
		}
		defer dec.Close()
		b, err := io.ReadAll(dec)
		return string(b), err
	}
	if got, err := read(crypt.NewOpener(key)); err != nil || got != want {
		t.Fatalf("read back %d bytes (want %d): %v", len(got), len(want), err)
	}
	if _, err := read(nil); !errors.Is(err, crypt.ErrNoIdentity) || !strings.Contains(err.Error(), key.Recipient().String()) {
		t.Fatalf("without identity: %v", err)
	}

	// A clear-text object in place of the encrypted one is refused even
	// though it would decode.
	plain := &pipeline{cmd: exec.Command("echo", "DROP DATABASE x;")}
	if err := mem.Delete(ctx, dataKey); err != nil {
		t.Fatal(err)
	}
	if _, err := plain.run(ctx, mem, dataKey); err != nil {
		t.Fatal(err)
	}
	if _, err := read(crypt.NewOpener(key)); !errors.Is(err, crypt.ErrTampered) {
		t.Fatalf("clear-text object in place of an encrypted one: %v", err)
	}
}

// TestPipelineEncoderFails: when the compressor cannot be made, the backup
// tool is killed (it would otherwise hold the server's backup locks,
// blocked on a full pipe) and the upload ends without an object.
func TestPipelineEncoderFails(t *testing.T) {
	mem := objstore.NewMemory()
	p := &pipeline{cmd: exec.Command("yes"), zstdOptions: []zstd.EOption{zstd.WithWindowSize(3)}}
	exited := false
	p.onExit = func() { exited = true }
	res := make(chan error, 1)
	go func() {
		_, err := p.run(t.Context(), mem, "c/snapshots/x/data.zst")
		res <- err
	}()
	var err error
	select {
	case err = <-res:
	case <-time.After(30 * time.Second): // a guard against the hang, not a timing
		_ = p.cmd.Process.Kill()
		t.Fatal("the pipeline hangs when the zstd encoder cannot be made")
	}
	if err == nil || !strings.Contains(err.Error(), "zstd") {
		t.Fatalf("run: %v, want the encoder's error", err)
	}
	if p.cmd.ProcessState == nil || !exited {
		t.Fatal("the backup tool was not killed and waited for")
	}
	if _, _, err := objstore.ReadAll(t.Context(), mem, "c/snapshots/x/data.zst"); !errors.Is(err, objstore.ErrNotExist) {
		t.Fatalf("an object was stored: %v", err)
	}
}
