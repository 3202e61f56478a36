package archive

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/binarc/binarc/archive/crypt"
	"github.com/binarc/binarc/archive/objstore"
	"github.com/binarc/binarc/archive/sign"
	"github.com/binarc/binarc/replication"
	gomysql "github.com/go-mysql-org/go-mysql/replication"
)

// Encrypted archives (layout version 3). A timeline whose manifest has an
// Encryption stores every segment sealed with package crypt: zstd first,
// then age, to the timeline's recipients. A compacted file is the
// concatenation of its sealed segments, exactly as stored: compaction needs
// no secret key (it runs in binarc stream, which holds public keys only),
// and a reader splits the object at the segments' stored sizes from the
// index and opens each part under its segment's key.

// LayoutVersionEncrypted is the layout version of an archive holding an
// encrypted timeline; plain archives are version 2 (LayoutVersionPlain).
const LayoutVersionEncrypted = 3

// Encryption says how the data objects of a timeline or a snapshot are
// encrypted.
type Encryption struct {
	Scheme     string   `json:"scheme"`     // "age"
	Recipients []string `json:"recipients"` // public keys, sorted
}

// EncryptionOf describes what s seals to; nil for none.
func EncryptionOf(s *crypt.Sealer) *Encryption {
	if s == nil {
		return nil
	}
	return &Encryption{Scheme: crypt.Scheme, Recipients: s.Recipients()}
}

// sameEncryption tells whether a timeline encrypted as e may be continued
// by a writer sealing with s.
func sameEncryption(e *Encryption, s *crypt.Sealer) bool {
	if e == nil || s == nil {
		return e == nil && s == nil
	}
	return crypt.SameRecipients(e.Recipients, s.Recipients())
}

// SegmentFacts is what a writer needs to know of a stored segment. A sealed
// segment carries it in its clear header (nothing there that the key and
// the index do not already show, but the format description); a plain one
// is decoded.
type SegmentFacts struct {
	SegmentInfo
	Next string `json:"next,omitempty"` // the file a ROTATE in it names
	FDE  []byte `json:"fde,omitempty"`  // the format description, at Start 0
}

// SealSegment encrypts a segment's zstd bytes as the object key, into
// chunks of its own.
func SealSegment(s *crypt.Sealer, key string, seg *Segment) (objstore.Chunks, error) {
	facts := SegmentFacts{SegmentInfo: SegmentInfoOf(seg, 0), Next: seg.Next, FDE: seg.FDE}
	var out objstore.ChunkBuffer
	w, err := s.SealStream(&out, key, facts)
	if err == nil {
		for _, b := range seg.Data {
			if _, err = w.Write(b); err != nil {
				break
			}
		}
	}
	if err == nil {
		err = w.Close()
	}
	if err != nil {
		return nil, err
	}
	return out.Take(), nil
}

// openObject returns the zstd bytes of a stored data object, opening it
// first when it is sealed.
func (c Catalog) openObject(key string, data []byte) ([]byte, error) {
	if !crypt.IsSealed(data) {
		return data, nil
	}
	_, z, err := c.Opener.OpenBytes(data, key)
	return z, err
}

// ReadSegmentFacts describes a stored segment: decoded when it is plain,
// from its clear header when it is sealed. Describing an archive (ls, the
// restore planner's choice of timeline, resume) needs no secret key; the
// header is authenticated with the contents when they are read.
func (c Catalog) ReadSegmentFacts(ctx context.Context, ref SegmentRef) (SegmentFacts, error) {
	if ref.End < ref.Start || ref.End-ref.Start > MaxSegmentSize {
		return SegmentFacts{}, fmt.Errorf("segment %s is corrupt: its range is not one binarc writes", ref.Key)
	}
	data, _, err := objstore.ReadAtMost(ctx, c.Store, ref.Key, sealedBound(StoredBound(ref.End-ref.Start))+sign.TrailerSize)
	if err != nil {
		return SegmentFacts{}, fmt.Errorf("read segment %s: %w", ref.Key, err)
	}
	if data, err = c.Trust.Check(ref.Key, data); err != nil {
		return SegmentFacts{}, err
	}
	if crypt.IsSealed(data) {
		return sealedFacts(data, ref)
	}
	plain, err := c.decodeSegmentObject(ref.Key, data)
	if err != nil {
		return SegmentFacts{}, err
	}
	f := SegmentFacts{SegmentInfo: SegmentInfo{Start: ref.Start, End: ref.End, StoredSize: ref.StoredSize}}
	err = replication.Events(plain, ref.Start, func(off uint64, h replication.Header, raw []byte) error {
		if f.Events == 0 {
			f.FirstEventTime = UnixTime(h.Timestamp)
		}
		f.Events++
		f.LastEventTime, f.LastEventType = UnixTime(h.Timestamp), uint8(h.Type)
		if g := replication.ParseGTID(raw); g != "" {
			if f.FirstGTID == "" {
				f.FirstGTID = g
			}
			f.LastGTID = g
		}
		switch {
		case h.Type == gomysql.ROTATE_EVENT:
			f.Next = RotateTarget(raw, off)
		case off == replication.MagicLen && h.Type == gomysql.FORMAT_DESCRIPTION_EVENT:
			f.FDE = append([]byte(nil), raw...)
		case ref.Start == 0 && f.StartGTIDState == nil && (h.Type == gomysql.MARIADB_GTID_LIST_EVENT || h.Type == gomysql.PREVIOUS_GTIDS_EVENT):
			if st, err := replication.EventStartState(raw); err == nil {
				str := st.String()
				f.StartGTIDState = &str
			}
		}
		return nil
	})
	if err != nil {
		return SegmentFacts{}, fmt.Errorf("segment %s: %w", ref.Key, err)
	}
	return f, nil
}

// sealedFacts reads a sealed segment's clear header, unauthenticated: no
// more trusted than the clear-text index it stands in for.
func sealedFacts(data []byte, ref SegmentRef) (SegmentFacts, error) {
	h, _, err := crypt.ReadHeader(bytes.NewReader(data))
	if err != nil {
		return SegmentFacts{}, fmt.Errorf("segment %s: %w", ref.Key, err)
	}
	var f SegmentFacts
	if h.Name != ref.Key || json.Unmarshal(h.Meta, &f) != nil || f.Start != ref.Start || f.End != ref.End {
		return SegmentFacts{}, fmt.Errorf("segment %s: %w: it was sealed as %s (objects swapped or copied in the bucket)", ref.Key, crypt.ErrTampered, h.Name)
	}
	f.StoredSize = ref.StoredSize
	return f, nil
}

// decodeSegmentObject opens (when sealed) and decompresses a segment
// object, and checks its length against its name.
func (c Catalog) decodeSegmentObject(key string, data []byte) ([]byte, error) {
	z, err := c.openObject(key, data)
	if err != nil {
		return nil, fmt.Errorf("segment %s: %w", key, err)
	}
	start, end, err := ParseSegmentName(key)
	if err != nil {
		return nil, fmt.Errorf("segment %s: %w", key, err)
	}
	plain, err := DecodeSegment(z, end-start)
	if err != nil {
		return nil, fmt.Errorf("segment %s is corrupt: %w", key, err)
	}
	if uint64(len(plain)) != end-start {
		return nil, fmt.Errorf("segment %s is corrupt: holds %d bytes, its name says %d", key, len(plain), end-start)
	}
	return plain, nil
}

// checkSealedCompacted checks, without a secret key, that a compacted
// object read from r is its file's sealed segments in order: each part's
// clear header names the segment, and the parts' sizes are the stored
// sizes. Opening each part (a reader with an identity) checks the rest.
func checkSealedCompacted(r io.Reader, segs []SegmentRef) error {
	br := bufio.NewReaderSize(r, 64<<10)
	for _, s := range segs {
		part := &io.LimitedReader{R: br, N: s.StoredSize}
		h, _, err := crypt.ReadHeader(part)
		if err != nil {
			return fmt.Errorf("part for segment %s: %w", s.Key, err)
		}
		if h.Name != s.Key {
			return fmt.Errorf("part for segment %s was sealed as %s", s.Key, h.Name)
		}
		if _, err := io.Copy(io.Discard, part); err != nil {
			return err
		}
		if part.N != 0 {
			return fmt.Errorf("part for segment %s is %d bytes short", s.Key, part.N)
		}
	}
	// Nothing after the last segment but, when signed, the signature.
	if n, _ := io.Copy(io.Discard, br); n != 0 && n != sign.TrailerSize {
		return fmt.Errorf("%d bytes after the last segment", n)
	}
	return nil
}

// CheckTimelineEncryption decides whether this writer may continue
// timeline ti: an encrypted timeline needs the same recipients; other ones
// (or encryption where there was none) start a new timeline, which ok=false
// says; no recipients on an encrypted timeline is refused.
func CheckTimelineEncryption(ti *TimelineInfo, s *crypt.Sealer) (ok bool, err error) {
	if sameEncryption(ti.Encryption, s) {
		return true, nil
	}
	if s == nil {
		return false, &replication.ConfigError{
			Problem: fmt.Sprintf("timeline %s is encrypted to %v, and binarc stream was started without --encrypt-to", ti.Timeline, ti.Encryption.Recipients),
			Hint:    "pass --encrypt-to (or BINARC_ENCRYPT_TO) with its recipients; other recipients start a new timeline",
		}
	}
	return false, nil
}

// EncryptionChange is the reason a timeline starts because the recipients
// changed.
func EncryptionChange(old *Encryption, s *crypt.Sealer) string {
	if old == nil {
		return fmt.Sprintf("encryption starts: recipients %v", s.Recipients())
	}
	return fmt.Sprintf("encryption recipients changed from %v to %v (key rotation)", old.Recipients, s.Recipients())
}

// UpgradeLayout makes layout.json say at least version, and, with a
// signer, carry its signature: an archive is marked version 3 once it
// holds an encrypted timeline, so that a binarc that cannot read it refuses
// to write to it; and a writer that signs (--sign-key) re-signs a
// layout.json written unsigned or with an older key, which is rewritten
// in normal operation anyway (Layout.Rewritten). Nothing changes when it
// already says so.
func UpgradeLayout(ctx context.Context, store objstore.Store, layout Layout, version int, signer *sign.Signer) error {
	key := layout.LayoutKey()
	for range 3 {
		data, info, err := objstore.ReadSmall(ctx, store, key)
		if err != nil {
			return fmt.Errorf("read %s: %w", key, err)
		}
		var li LayoutInfo
		if body, _ := sign.SplitSigned(data); json.Unmarshal(body, &li) != nil {
			return fmt.Errorf("%w: %s is not a binarc layout file", ErrFatal, key)
		}
		want := signer.Sign(key, MarshalJSON(LayoutInfo{Version: max(li.Version, version)}))
		if li.Version >= version && (signer == nil || bytes.Equal(data, want)) {
			return nil
		}
		_, err = store.Put(ctx, key, want, objstore.PutOptions{IfMatch: info.ETag})
		if !errors.Is(err, objstore.ErrPrecondition) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%w: %s keeps changing", ErrConflict, key)
}

// LatestEncryption is the encryption of the cluster's newest timeline: nil
// when it is plain or there is none.
func (c Catalog) LatestEncryption(ctx context.Context) (*Encryption, error) {
	tls, err := c.Timelines(ctx)
	if err != nil || len(tls) == 0 {
		return nil, err
	}
	ti, err := c.ReadTimeline(ctx, tls[len(tls)-1])
	// The newest timeline may be listed before its manifest reads (binarc
	// stream is creating it, on a store that lists an object's folder
	// while the object is written): wait for it a moment.
	for wait := 0; errors.Is(err, objstore.ErrNotExist) && wait < 25; wait++ {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		ti, err = c.ReadTimeline(ctx, tls[len(tls)-1])
	}
	if err != nil {
		return nil, err
	}
	return ti.Encryption, nil
}

// EncryptedTimelines lists the cluster's encrypted timelines and the
// recipients of each: what a reader needs an identity for.
func (c Catalog) EncryptedTimelines(ctx context.Context) (map[string][]string, error) {
	tls, err := c.Timelines(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string][]string{}
	for _, tl := range tls {
		ti, err := c.ReadTimeline(ctx, tl)
		if err != nil {
			continue // verify reports an unreadable manifest
		}
		if ti.Encryption != nil {
			out[tl] = ti.Encryption.Recipients
		}
	}
	return out, nil
}

// timelineEncrypted caches, per store and timeline manifest, whether the
// timeline is encrypted: manifests never change once written.
var timelineEncrypted = encryptedCache{m: map[timelineCacheKey]bool{}}

// timelineCacheMax bounds timelineEncrypted: its keys hold their stores,
// and a long-running process (serve, the prune runner) may open many.
const timelineCacheMax = 1024

// timelineCacheKey names a timeline manifest in one store (stores are
// pointers: the same store, the same key).
type timelineCacheKey struct {
	store objstore.Store
	key   string
}

// encryptedCache is a map of at most timelineCacheMax entries; when full,
// it starts again empty: a miss costs one small read of a manifest.
type encryptedCache struct {
	mu sync.Mutex
	m  map[timelineCacheKey]bool
}

func (c *encryptedCache) load(k timelineCacheKey) (enc, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	enc, ok = c.m[k]
	return enc, ok
}

func (c *encryptedCache) store(k timelineCacheKey, enc bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= timelineCacheMax {
		clear(c.m)
	}
	c.m[k] = enc
}

// checkPlainAllowed refuses a clear-text data object in a timeline whose
// manifest says its objects are encrypted: an object put there in place of
// an encrypted one (it would decode, and replay whatever it holds).
func (c Catalog) checkPlainAllowed(ctx context.Context, key string) error {
	rest, ok := strings.CutPrefix(key, c.Layout.TimelinesPrefix())
	tl, _, found := strings.Cut(rest, "/")
	if !ok || !found {
		return nil
	}
	cacheKey := timelineCacheKey{store: c.Store, key: c.Layout.TimelineKey(tl)}
	enc, known := timelineEncrypted.load(cacheKey)
	if !known {
		ti, err := c.ReadTimeline(ctx, tl)
		if err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
		enc = ti.Encryption != nil
		timelineEncrypted.store(cacheKey, enc)
	}
	if enc {
		return fmt.Errorf("%s: %w: it is not encrypted, but timeline %s is: an object was put in place of an encrypted one", key, crypt.ErrTampered, tl)
	}
	return nil
}
