package verify

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"filippo.io/age"
	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/archive/crypt"
	"github.com/binarc/binarc/archive/objstore"
	"github.com/binarc/binarc/internal/xbstreamtest"
	"github.com/binarc/binarc/snapshot"
	"github.com/binarc/binarc/snapshot/snapshottest"
)

func TestSnapshot(t *testing.T) {
	ctx := context.Background()
	l := archive.Layout{Cluster: "c"}
	s := objstore.NewMemory()
	good := snapshottest.Store(t, s, l, "20261125T031500Z-physical", xbstreamtest.Sample())
	checks, err := Snapshot(ctx, s, l, good.ID)
	if err != nil {
		t.Fatalf("Verify of a good snapshot: %v (%+v)", err, checks)
	}
	var names []string
	for _, c := range checks {
		names = append(names, c.What)
	}
	if got := strings.Join(names, ","); got != "manifest,stored size,sha256,zstd,raw size,xbstream" {
		t.Errorf("checks made: %s", got)
	}

	data, _, _ := objstore.ReadAll(ctx, s, good.DataKey)
	corrupt := func(name string, mutate func([]byte) []byte, want string) {
		t.Run(name, func(t *testing.T) {
			b := mutate(bytes.Clone(data))
			s.Put(ctx, good.DataKey, b, objstore.PutOptions{})
			_, err := Snapshot(ctx, s, l, good.ID)
			if !errors.Is(err, ErrSnapshot) || !strings.Contains(err.Error(), want) {
				t.Errorf("Verify = %v; want ErrSnapshot naming %q", err, want)
			}
		})
	}
	corrupt("flipped byte", func(b []byte) []byte { b[len(b)/2] ^= 0x40; return b }, "")
	corrupt("truncated", func(b []byte) []byte { return b[:len(b)-7] }, "")
	corrupt("appended", func(b []byte) []byte { return append(b, 1, 2, 3) }, "")

	// A stored object that matches a manifest but holds a cut xbstream.
	cut := snapshottest.Store(t, s, l, "20261125T041500Z-physical", xbstreamtest.Sample()[:1000])
	if _, err := Snapshot(ctx, s, l, cut.ID); err == nil || !strings.Contains(err.Error(), "xbstream") {
		t.Errorf("Verify of a cut xbstream = %v", err)
	}

	if _, err := Snapshot(ctx, s, l, "20261125T051500Z-physical"); !errors.Is(err, objstore.ErrNotExist) || !strings.Contains(err.Error(), "incomplete") {
		t.Errorf("Verify of a missing snapshot = %v", err)
	}
}

// TestEncryptedSnapshot: without an identity verify checks an encrypted
// snapshot's stored size and SHA-256 and says its contents were not
// checked; with one, it checks everything.
func TestEncryptedSnapshot(t *testing.T) {
	ctx := context.Background()
	key, _ := age.GenerateX25519Identity()
	sealer, err := crypt.NewSealer([]string{key.Recipient().String()})
	if err != nil {
		t.Fatal(err)
	}
	l := archive.Layout{Cluster: "c"}
	s := objstore.NewMemory()
	m := snapshottest.Store(t, s, l, "20261125T031500Z-physical", xbstreamtest.Sample())
	data, _, err := objstore.ReadAll(ctx, s, m.DataKey)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := sealer.Seal(m.DataKey, nil, data)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(sealed)
	m.StoredSize, m.SHA256, m.Encryption = int64(len(sealed)), hex.EncodeToString(sum[:]), archive.EncryptionOf(sealer)
	for key, b := range map[string][]byte{m.DataKey: sealed, l.SnapshotManifestKey(m.ID): snapshot.MarshalManifest(m)} {
		if _, err := s.Put(ctx, key, b, objstore.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if checks, err := SnapshotWith(ctx, s, l, m.ID, nil, nil); err != nil || checks[len(checks)-1].What != "encryption" {
		t.Fatalf("verify without identity: %v %+v", err, checks)
	}
	if checks, err := SnapshotWith(ctx, s, l, m.ID, crypt.NewOpener(key), nil); err != nil || checks[len(checks)-1].What != "xbstream" {
		t.Fatalf("verify with identity: %v %+v", err, checks)
	}
}
