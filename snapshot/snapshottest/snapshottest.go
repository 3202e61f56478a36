// Package snapshottest stores small, well-formed snapshots for tests that
// do not run a backup tool. It is imported by tests only.
package snapshottest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"testing"
	"time"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/archive/objstore"
	"github.com/binarc/binarc/snapshot"
	"github.com/klauspost/compress/zstd"
)

// Store puts a physical snapshot of raw (an xbstream) into s the
// way Take does and returns its manifest.
func Store(t *testing.T, s objstore.Store, l archive.Layout, id string, raw []byte) *snapshot.Manifest {
	t.Helper()
	var z bytes.Buffer
	enc, _ := zstd.NewWriter(&z, zstd.WithEncoderCRC(true))
	enc.Write(raw)
	enc.Close()
	sum := sha256.Sum256(z.Bytes())
	m := &snapshot.Manifest{Version: 1, ID: id, Method: snapshot.Physical, DataKey: l.SnapshotDataKey(id, archive.SnapshotDataPhysical),
		RawSize: int64(len(raw)), StoredSize: int64(z.Len()), SHA256: hex.EncodeToString(sum[:]),
		Started: time.Now(), Finished: time.Now(), Coordinates: snapshot.Coordinates{File: "mysql-bin.000001", Pos: 4, From: "replica"}}
	ctx := context.Background()
	if _, err := s.Put(ctx, m.DataKey, z.Bytes(), objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, l.SnapshotManifestKey(id), snapshot.MarshalManifest(m), objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	return m
}
