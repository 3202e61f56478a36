package stream

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"filippo.io/age"
	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/archive/crypt"
	"github.com/binarc/binarc/archive/objstore"
	"github.com/binarc/binarc/replication"
	"github.com/rs/zerolog"
)

func ageKey(t *testing.T) *age.X25519Identity {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	must(t, err)
	return id
}

func sealerFor(t *testing.T, ids ...*age.X25519Identity) *crypt.Sealer {
	t.Helper()
	var rs []string
	for _, id := range ids {
		rs = append(rs, id.Recipient().String())
	}
	s, err := crypt.NewSealer(rs)
	must(t, err)
	return s
}

// allObjects walks the store.
func allObjects(t *testing.T, s objstore.Store, prefix string) map[string][]byte {
	t.Helper()
	ctx := context.Background()
	out := map[string][]byte{}
	entries, err := s.List(ctx, prefix)
	must(t, err)
	for _, e := range entries {
		if e.Dir {
			for k, v := range allObjects(t, s, e.Key) {
				out[k] = v
			}
			continue
		}
		data, _, err := objstore.ReadAll(ctx, s, e.Key)
		must(t, err)
		out[e.Key] = data
	}
	return out
}

func rebuildErr(cat archive.Catalog, file string) ([]byte, error) {
	ctx := context.Background()
	files, err := cat.Files(ctx, "tl")
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		if f.Name != file {
			continue
		}
		fs, err := cat.FileState(ctx, "tl", f)
		if err != nil {
			return nil, err
		}
		var buf bytes.Buffer
		_, err = cat.Rebuild(ctx, fs, &buf)
		return buf.Bytes(), err
	}
	return nil, errors.New("no such file")
}

// TestSealedArchive: an archive with encrypted segments rebuilds byte for
// byte like a plain one, before and after compaction, for either
// recipient; it holds no clear event bytes; the writer resumes and indexes
// it without a secret key.
func TestSealedArchive(t *testing.T) {
	daily, recovery := ageKey(t), ageKey(t)
	plainMem, _, _ := buildArchive(t)
	mem, ends, fde2 := buildArchiveSealed(t, sealerFor(t, daily, recovery))
	want := rebuildAll(t, archive.Catalog{Store: plainMem, Layout: archive.Layout{Cluster: "c"}})
	writer := archive.Catalog{Store: mem, Layout: archive.Layout{Cluster: "c"}}

	clear := want["mysql-bin.000001"][300:364]
	for key, data := range allObjects(t, mem, "") {
		if strings.HasSuffix(key, ".zst") && !crypt.IsSealed(data) {
			t.Fatalf("%s is not sealed", key)
		}
		if bytes.Contains(data, clear) {
			t.Fatalf("%s holds event bytes in clear", key)
		}
	}
	for _, id := range []*age.X25519Identity{daily, recovery} {
		got := rebuildAll(t, archive.Catalog{Store: mem, Layout: archive.Layout{Cluster: "c"}, Opener: crypt.NewOpener(id)})
		for f, b := range want {
			if !bytes.Equal(got[f], b) {
				t.Fatalf("%s rebuilt differently from the encrypted archive", f)
			}
		}
	}

	// The writer, with public keys only, finds where to resume and
	// indexes a complete file from the clear headers.
	ctx := context.Background()
	must(t, mem.Delete(ctx, writer.Layout.IndexKey("tl", "mysql-bin.000001")))
	rp, err := findResume(ctx, writer, "tl", zerolog.Nop())
	must(t, err)
	if rp.Position != (replication.Position{File: "mysql-bin.000002", Offset: ends[1]}) || !bytes.Equal(rp.ExpectFDE, fde2) {
		t.Fatalf("resume at %v (fde %v)", rp.Position, rp.ExpectFDE != nil)
	}
	plainIx, err := archive.Catalog{Store: plainMem, Layout: writer.Layout}.ReadIndex(ctx, "tl", "mysql-bin.000001")
	must(t, err)
	ix, err := writer.ReadIndex(ctx, "tl", "mysql-bin.000001")
	must(t, err)
	if ix.Next != "mysql-bin.000002" || !ix.Closed || ix.LastEventTime != plainIx.LastEventTime || len(ix.Segments) != len(plainIx.Segments) {
		t.Fatalf("index from clear headers: %+v, want like %+v", ix, plainIx)
	}

	// Compaction needs no secret key and keeps the sealed segments.
	res, err := writer.Compact(ctx, "tl", "mysql-bin.000001")
	must(t, err)
	if res.SegmentsDeleted == 0 {
		t.Fatalf("compact: %+v", res)
	}
	got := rebuildAll(t, archive.Catalog{Store: mem, Layout: archive.Layout{Cluster: "c"}, Opener: crypt.NewOpener(recovery)})
	if !bytes.Equal(got["mysql-bin.000001"], want["mysql-bin.000001"]) {
		t.Fatal("compacted encrypted file rebuilt differently")
	}
}

// TestSealedArchiveRefuses: every way of reading what cannot be trusted
// fails with an error that says so, and no byte of the file is written.
func TestSealedArchiveRefuses(t *testing.T) {
	key, other := ageKey(t), ageKey(t)
	ctx := context.Background()
	layout := archive.Layout{Cluster: "c"}
	fresh := func(compact bool) *objstore.Memory {
		mem, _, _ := buildArchiveSealed(t, sealerFor(t, key))
		if compact {
			_, err := archive.Catalog{Store: mem, Layout: layout}.Compact(ctx, "tl", "mysql-bin.000001")
			must(t, err)
		}
		return mem
	}
	edit := func(mem *objstore.Memory, key string, f func([]byte) []byte) {
		data, _, err := objstore.ReadAll(ctx, mem, key)
		must(t, err)
		_, err = mem.Put(ctx, key, f(bytes.Clone(data)), objstore.PutOptions{})
		must(t, err)
	}
	segs := func(mem *objstore.Memory) []archive.SegmentRef {
		refs, err := archive.Catalog{Store: mem, Layout: layout}.Segments(ctx, "tl", "mysql-bin.000001")
		must(t, err)
		return refs
	}
	compacted := layout.CompactedKey("tl", "mysql-bin.000001")
	plainMem, _, _ := buildArchive(t)
	want := rebuildAll(t, archive.Catalog{Store: plainMem, Layout: layout})["mysql-bin.000001"]
	cases := []struct {
		name    string
		compact bool
		opener  *crypt.Opener
		damage  func(*objstore.Memory)
		want    error
		says    string
	}{
		{"missing identity", false, nil, nil, crypt.ErrNoIdentity, key.Recipient().String()},
		{"wrong identity", false, crypt.NewOpener(other), nil, crypt.ErrNoIdentity, other.Recipient().String()},
		{"wrong identity, compacted", true, crypt.NewOpener(other), nil, crypt.ErrNoIdentity, key.Recipient().String()},
		{"flipped byte", false, crypt.NewOpener(key), func(m *objstore.Memory) {
			edit(m, segs(m)[1].Key, func(b []byte) []byte { b[len(b)-20] ^= 1; return b })
		}, crypt.ErrTampered, "corrupt"},
		{"flipped byte, compacted", true, crypt.NewOpener(key), func(m *objstore.Memory) {
			edit(m, compacted, func(b []byte) []byte { b[len(b)/2] ^= 1; return b })
		}, crypt.ErrTampered, ""},
		{"truncated", false, crypt.NewOpener(key), func(m *objstore.Memory) {
			edit(m, segs(m)[1].Key, func(b []byte) []byte { return b[:len(b)-17] })
		}, crypt.ErrTampered, ""},
		{"truncated, compacted", true, crypt.NewOpener(key), func(m *objstore.Memory) {
			edit(m, compacted, func(b []byte) []byte { return b[:len(b)-17] })
		}, crypt.ErrTampered, ""},
		{"segments swapped", false, crypt.NewOpener(key), func(m *objstore.Memory) {
			s := segs(m)
			a, _, _ := objstore.ReadAll(ctx, m, s[1].Key)
			b, _, _ := objstore.ReadAll(ctx, m, s[2].Key)
			_, _ = m.Put(ctx, s[1].Key, b, objstore.PutOptions{})
			_, _ = m.Put(ctx, s[2].Key, a, objstore.PutOptions{})
		}, crypt.ErrTampered, "sealed as"},
		{"clear header edited", false, crypt.NewOpener(key), func(m *objstore.Memory) {
			edit(m, segs(m)[1].Key, func(b []byte) []byte {
				i := bytes.Index(b, []byte(`"events":`)) + len(`"events":`)
				b[i] = '0' + (b[i]-'0'+1)%10 // still valid JSON, other content
				return b
			})
		}, crypt.ErrTampered, "header was changed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			mem := fresh(c.compact)
			if c.damage != nil {
				c.damage(mem)
			}
			got, err := rebuildErr(archive.Catalog{Store: mem, Layout: layout, Opener: c.opener}, "mysql-bin.000001")
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.says) {
				t.Fatalf("err = %v, want %v saying %q", err, c.want, c.says)
			}
			// Bytes stream out as each age chunk is authenticated: what was
			// written before the refusal is the file's true start, never a
			// forged byte (binlog fetch and restore write to a temporary
			// file they drop on error).
			if len(got) >= len(want) || !bytes.HasPrefix(want, got) {
				t.Fatalf("%d bytes written before the refusal, not a true prefix of the file", len(got))
			}
		})
	}
}

// TestWriterRefusesPlainOnEncryptedTimeline: a writer without recipients
// may not continue an encrypted timeline; other recipients start a new one.
func TestWriterRefusesPlainOnEncryptedTimeline(t *testing.T) {
	a, b := ageKey(t), ageKey(t)
	ti := &archive.TimelineInfo{Timeline: "tl", Encryption: archive.EncryptionOf(sealerFor(t, a))}
	_, err := archive.CheckTimelineEncryption(ti, nil)
	if !replication.IsConfigError(err) || !strings.Contains(err.Error(), a.Recipient().String()) || !strings.Contains(err.Error(), "--encrypt-to") {
		t.Fatalf("plain writer on an encrypted timeline: %v", err)
	}
	if ok, err := archive.CheckTimelineEncryption(ti, sealerFor(t, a)); !ok || err != nil {
		t.Fatalf("same recipients: %v %v", ok, err)
	}
	if ok, err := archive.CheckTimelineEncryption(ti, sealerFor(t, a, b)); ok || err != nil {
		t.Fatalf("new recipients must start a timeline: %v %v", ok, err)
	}
	if ok, err := archive.CheckTimelineEncryption(&archive.TimelineInfo{}, sealerFor(t, a)); ok || err != nil {
		t.Fatalf("encryption on a plain timeline must start a timeline: %v %v", ok, err)
	}
}

// TestPlainObjectInEncryptedTimeline: a clear-text segment (or compacted
// file) put in place of an encrypted one decodes, so only the timeline's
// manifest can tell: it is refused.
func TestPlainObjectInEncryptedTimeline(t *testing.T) {
	key := ageKey(t)
	ctx := context.Background()
	layout := archive.Layout{Cluster: "c"}
	plainMem, _, _ := buildArchive(t)
	for _, compact := range []bool{false, true} {
		mem, _, _ := buildArchiveSealed(t, sealerFor(t, key))
		for _, m := range []*objstore.Memory{plainMem, mem} {
			if compact {
				if _, err := (archive.Catalog{Store: m, Layout: layout}).Compact(ctx, "tl", "mysql-bin.000001"); err != nil && !errors.Is(err, archive.ErrNotCompactable) {
					t.Fatal(err)
				}
			}
		}
		// Every data object of file 1, clear, in place of the sealed ones.
		for k, data := range allObjects(t, plainMem, layout.TimelinePrefix("tl")) {
			if strings.HasSuffix(k, ".zst") && strings.Contains(k, "mysql-bin.000001") {
				if _, err := mem.Put(ctx, k, data, objstore.PutOptions{}); err != nil {
					t.Fatal(err)
				}
			}
		}
		_, err := rebuildErr(archive.Catalog{Store: mem, Layout: layout, Opener: crypt.NewOpener(key)}, "mysql-bin.000001")
		if !errors.Is(err, crypt.ErrTampered) || !strings.Contains(err.Error(), "not encrypted") {
			t.Fatalf("compacted=%v: a clear-text object in an encrypted timeline: %v", compact, err)
		}
	}
}
