package verify

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/archive/objstore"
	"github.com/binarc/binarc/archive/sign"
	"github.com/binarc/binarc/internal/binlogtest"
	"github.com/binarc/binarc/replication"
	"github.com/binarc/binarc/stream"
	gomysql "github.com/go-mysql-org/go-mysql/replication"
	"github.com/rs/zerolog"
)

func genSigner(t *testing.T) *sign.Signer {
	t.Helper()
	s, err := sign.GenerateSigner(filepath.Join(t.TempDir(), "k.pem"))
	must(t, err)
	return s
}

// newSignedVerifyArchive is newVerifyArchive written with --sign-key.
func newSignedVerifyArchive(t *testing.T, s *sign.Signer) *verifyArchive {
	t.Helper()
	a := &verifyArchive{t: t, mem: objstore.NewMemory(), layout: archive.Layout{Cluster: "c"}}
	a.cat = archive.Catalog{Store: a.mem, Layout: a.layout, Signer: s}
	a.put(a.layout.LayoutKey(), s.Sign(a.layout.LayoutKey(), marshalJSON(archive.LayoutInfo{Version: archive.LayoutVersionPlain})))
	ti := &archive.TimelineInfo{Version: archive.LayoutVersionPlain, Timeline: vtl1, StartFile: binlogName(1), SourceServerID: 1, Reason: "new archive"}
	must(t, a.cat.PutOnce(context.Background(), a.layout.TimelineKey(vtl1), archive.MarshalJSON(ti)))
	up, err := stream.NewUploader(stream.UploaderConfig{Concurrency: 2, MaxBufferedBytes: 1 << 20, Signer: s}, a.mem, a.layout, stream.Durable{Timeline: vtl1}, zerolog.Nop(), nil)
	must(t, err)
	defer up.Close()
	seg := stream.NewSegmenter(stream.SegmenterConfig{FlushInterval: time.Hour, SegmentSize: 4096}, vtl1, replication.Position{File: binlogName(1)}, up)
	for n := 1; n <= 2; n++ {
		b := binlogtest.New(binlogName(n))
		must(t, seg.Add(binlogtest.FillFormatDescription(b.Next(gomysql.FORMAT_DESCRIPTION_EVENT, 120), 1)))
		for i := 0; i < 10; i++ {
			must(t, seg.Add(b.Next(gomysql.WRITE_ROWS_EVENTv1, 1000)))
		}
		must(t, seg.Add(b.Next(gomysql.ROTATE_EVENT, binlogtest.RotateSize)))
		must(t, seg.FileDone(b.File, b.NextName()))
		a.events += 12
	}
	must(t, seg.Flush())
	drain(t, up)
	return a
}

func TestVerifySigned(t *testing.T) {
	s, other := genSigner(t), genSigner(t)
	trust, err := sign.ParseTrust([]string{s.PublicKey()})
	must(t, err)
	a := newSignedVerifyArchive(t, s)
	a.cat.Trust = trust
	if rep := a.verify(VerifyOptions{NoteUnsigned: true}); !rep.OK() || rep.Notes != 0 || rep.Counts.Events != a.events {
		t.Fatalf("a signed archive, verified with its key: %d problems, %d notes, %d events (want %d):\n%s", rep.Problems, rep.Notes, rep.Counts.Events, a.events, findings(rep))
	}
	// Compaction re-signs.
	_, err = a.cat.Compact(context.Background(), vtl1, binlogName(1))
	must(t, err)
	if rep := a.verify(VerifyOptions{}); !rep.OK() || rep.Counts.Compacted != 1 {
		t.Fatalf("after compaction: %d problems, %d compacted:\n%s", rep.Problems, rep.Counts.Compacted, findings(rep))
	}
	key := a.segments(vtl1, binlogName(2))[1].Key
	good := a.get(key)
	body, _ := sign.SplitSigned(good)
	a.put(key, body)
	expect(t, a.verify(VerifyOptions{}), SeverityProblem, key, "is not signed, and --trust-key is given")
	a.put(key, other.Sign(key, body))
	expect(t, a.verify(VerifyOptions{}), SeverityProblem, key, other.KeyID().String(), "not trusted")
	a.put(key, good)
	ix := a.layout.IndexKey(vtl1, binlogName(2))
	a.put(ix, other.Sign(ix, a.get(ix)[:len(a.get(ix))-sign.TrailerSize]))
	expect(t, a.verify(VerifyOptions{}), SeverityProblem, ix, "not trusted")
}

func TestVerifyNotesUnsigned(t *testing.T) {
	a := newVerifyArchive(t)
	rep := a.verify(VerifyOptions{NoteUnsigned: true})
	if !rep.OK() || rep.Notes != 1 {
		t.Fatalf("an unsigned archive without --trust-key: %d problems, %d notes; want one note:\n%s", rep.Problems, rep.Notes, findings(rep))
	}
	expect(t, rep, SeverityNote, "are not signed", "--trust-key")
	if rep := newSignedVerifyArchive(t, genSigner(t)).verify(VerifyOptions{NoteUnsigned: true}); rep.Notes != 0 {
		t.Fatalf("a signed archive has no unsigned objects to note:\n%s", findings(rep))
	}
}
