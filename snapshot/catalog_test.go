package snapshot

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/archive/objstore"
	"github.com/klauspost/compress/zstd"
)

// storeSnapshot puts a physical snapshot of raw (an xbstream) into s the
// way Take does and returns its manifest.
func storeSnapshot(t *testing.T, s objstore.Store, l archive.Layout, id string, raw []byte) *Manifest {
	t.Helper()
	var z bytes.Buffer
	enc, _ := zstd.NewWriter(&z, zstd.WithEncoderCRC(true))
	enc.Write(raw)
	enc.Close()
	sum := sha256.Sum256(z.Bytes())
	m := &Manifest{Version: 1, ID: id, Method: Physical, DataKey: l.SnapshotDataKey(id, archive.SnapshotDataPhysical),
		RawSize: int64(len(raw)), StoredSize: int64(z.Len()), SHA256: hex.EncodeToString(sum[:]),
		Started: time.Now(), Finished: time.Now(), Coordinates: Coordinates{File: "mysql-bin.000001", Pos: 4, From: "replica"}}
	ctx := context.Background()
	if _, err := s.Put(ctx, m.DataKey, z.Bytes(), objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, l.SnapshotManifestKey(id), MarshalManifest(m), objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	return m
}

func xbSample() []byte {
	var b []byte
	b = append(b, xbChunk('P', "ibdata1", bytes.Repeat([]byte("data"), 50000))...)
	b = append(b, xbChunk('E', "ibdata1", nil)...)
	return b
}

func TestVerify(t *testing.T) {
	ctx := context.Background()
	l := archive.Layout{Cluster: "c"}
	s := objstore.NewMemory()
	good := storeSnapshot(t, s, l, "20261125T031500Z-physical", xbSample())
	checks, err := Verify(ctx, s, l, good.ID)
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
			_, err := Verify(ctx, s, l, good.ID)
			if !errors.Is(err, ErrVerify) || !strings.Contains(err.Error(), want) {
				t.Errorf("Verify = %v; want ErrVerify naming %q", err, want)
			}
		})
	}
	corrupt("flipped byte", func(b []byte) []byte { b[len(b)/2] ^= 0x40; return b }, "")
	corrupt("truncated", func(b []byte) []byte { return b[:len(b)-7] }, "")
	corrupt("appended", func(b []byte) []byte { return append(b, 1, 2, 3) }, "")

	// A stored object that matches a manifest but holds a cut xbstream.
	cut := storeSnapshot(t, s, l, "20261125T041500Z-physical", xbSample()[:1000])
	if _, err := Verify(ctx, s, l, cut.ID); err == nil || !strings.Contains(err.Error(), "xbstream") {
		t.Errorf("Verify of a cut xbstream = %v", err)
	}

	if _, err := Verify(ctx, s, l, "20261125T051500Z-physical"); !errors.Is(err, objstore.ErrNotExist) || !strings.Contains(err.Error(), "incomplete") {
		t.Errorf("Verify of a missing snapshot = %v", err)
	}
}

func TestList(t *testing.T) {
	ctx := context.Background()
	l := archive.Layout{Cluster: "c"}
	s := objstore.NewMemory()
	storeSnapshot(t, s, l, "20261125T031500Z-physical", xbSample())
	// A snapshot that died before its manifest, and junk.
	s.Put(ctx, l.SnapshotDataKey("20261125T041500Z-logical", archive.SnapshotDataLogical), []byte("x"), objstore.PutOptions{})
	s.Put(ctx, l.SnapshotsPrefix()+"not-a-snapshot/x", []byte("x"), objstore.PutOptions{})
	s.Put(ctx, l.SnapshotManifestKey("20261125T051500Z-physical"), []byte("{"), objstore.PutOptions{})
	got, err := List(ctx, s, l)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("List = %+v; want 3 snapshots", got)
	}
	if !got[0].Complete || got[0].Manifest == nil || got[1].Complete || got[1].Objects != 1 || got[2].Complete || got[2].Problem == "" {
		t.Errorf("List = %+v", got)
	}
}

func TestCheckDataDir(t *testing.T) {
	err := checkDataDir(ServerInfo{DataDir: "/nonexistent/mysql/"}, false)
	if err == nil || !strings.Contains(err.Error(), "not on this host") || !strings.Contains(err.Error(), "--method logical") {
		t.Errorf("missing datadir: %v", err)
	}
	dir := t.TempDir()
	if err := checkDataDir(ServerInfo{DataDir: dir, Hostname: "elsewhere"}, false); err != nil {
		t.Errorf("local datadir without host check: %v", err)
	}
	if err := checkDataDir(ServerInfo{DataDir: dir, Hostname: "elsewhere"}, true); err == nil || !strings.Contains(err.Error(), `"elsewhere"`) {
		t.Errorf("host check on another host: %v", err)
	}
}
