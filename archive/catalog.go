package archive

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/binarc/binarc/archive/crypt"
	"github.com/binarc/binarc/archive/objstore"
	"github.com/binarc/binarc/archive/sign"
	"github.com/binarc/binarc/replication"
)

// TimelineInfo is the manifest of a timeline, written when it starts.
type TimelineInfo struct {
	Version  int       `json:"version"`
	Timeline string    `json:"timeline"`
	Created  time.Time `json:"created"`
	// Reason says why the timeline began: "new archive", or what broke the
	// previous one.
	Reason    string `json:"reason"`
	StartFile string `json:"start_file"`
	// Source describes the primary, without credentials.
	SourceAddr     string `json:"source_addr"`
	SourceServerID uint32 `json:"source_server_id"`
	// SourceServerUUID is its server_uuid (MySQL; layout version 2).
	SourceServerUUID string `json:"source_server_uuid,omitempty"`
	SourceVersion    string `json:"source_version"`
	SourceFlavor     string `json:"source_flavor"`
	// StartGTIDState is the GTID state at the start of StartFile, as the
	// server listed it (layout version 2; absent when unknown).
	StartGTIDState *string `json:"start_gtid_state,omitempty"`
	// Previous is where the previous timeline's archive ended, if any.
	Previous *TimelineEnd `json:"previous,omitempty"`
	// Encryption is set when the timeline's segments are encrypted.
	Encryption *Encryption `json:"encryption,omitempty"`
}

// TimelineEnd is the last durable position of a timeline.
type TimelineEnd struct {
	Timeline string `json:"timeline"`
	File     string `json:"file"`
	Offset   uint64 `json:"offset"`
	// GTIDState is the GTID state there (layout version 2; absent when
	// unknown).
	GTIDState *string `json:"gtid_state,omitempty"`
}

// SegmentRef is a stored segment found by listing.
type SegmentRef struct {
	Key        string
	Start, End uint64
	StoredSize int64
}

// FileRef is a binlog file found in a timeline: its segment folder, its
// index, its compacted object, or some of them.
type FileRef struct {
	Name      string
	Indexed   bool
	Compacted bool
}

// Catalog reads what the store holds for one cluster.
type Catalog struct {
	Store  objstore.Store
	Layout Layout
	// Opener decrypts encrypted objects (--identity); nil when none was
	// given, and then reading an encrypted segment's contents fails with
	// an error naming its recipients.
	Opener *crypt.Opener
	// sign.Trust, when set (--trust-key), refuses every object read that is
	// not signed by one of its keys; nil strips signatures unchecked.
	Trust *sign.Trust
	// sign.Signer, when set (--sign-key), signs every object written through
	// the catalog (indexes, joins, compacted files).
	Signer *sign.Signer
}

// Timelines lists the cluster's timelines, oldest first.
func (c Catalog) Timelines(ctx context.Context) ([]string, error) {
	entries, err := c.Store.List(ctx, c.Layout.TimelinesPrefix())
	if err != nil {
		return nil, fmt.Errorf("list timelines of cluster %q: %w", c.Layout.Cluster, err)
	}
	var tls []string
	for _, e := range entries {
		name := strings.TrimSuffix(strings.TrimPrefix(e.Key, c.Layout.TimelinesPrefix()), "/")
		if _, _, err := ParseTimeline(name); e.Dir && err == nil {
			tls = append(tls, name)
		}
	}
	sort.Strings(tls)
	return tls, nil
}

// Clusters lists the clusters a store holds: its top-level folders.
func Clusters(ctx context.Context, store objstore.Store) ([]string, error) {
	entries, err := store.List(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("list the clusters in %s: %w", store, err)
	}
	var out []string
	for _, e := range entries {
		if e.Dir {
			out = append(out, strings.TrimSuffix(e.Key, "/"))
		}
	}
	return out, nil
}

// ReadTimeline reads a timeline's manifest.
func (c Catalog) ReadTimeline(ctx context.Context, tl string) (*TimelineInfo, error) {
	var ti TimelineInfo
	if err := c.readJSON(ctx, c.Layout.TimelineKey(tl), &ti); err != nil {
		return nil, err
	}
	if err := ti.check(); err != nil {
		return nil, fmt.Errorf("%s: %w", c.Layout.TimelineKey(tl), err)
	}
	return &ti, nil
}

// Files lists the binlog files of a timeline in binlog order.
func (c Catalog) Files(ctx context.Context, tl string) ([]FileRef, error) {
	prefix := c.Layout.TimelinePrefix(tl)
	entries, err := c.Store.List(ctx, prefix)
	if err != nil {
		return nil, fmt.Errorf("list timeline %s: %w", tl, err)
	}
	byName := map[string]*FileRef{}
	for _, e := range entries {
		name := strings.TrimPrefix(e.Key, prefix)
		indexed, compacted := false, false
		if e.Dir {
			name = strings.TrimSuffix(name, "/")
		} else if f, ok := ParseIndexName(name); ok {
			name, indexed = f, true
		} else if f, ok := ParseCompactedName(name); ok {
			name, compacted = f, true
		} else {
			continue
		}
		if ValidateName("binlog file", name) != nil {
			// Not a name binarc writes, and one that would escape a
			// directory it is joined to ("..", "a/b"); verify reports it.
			continue
		}
		ref := byName[name]
		if ref == nil {
			ref = &FileRef{Name: name}
			byName[name] = ref
		}
		ref.Indexed = ref.Indexed || indexed
		ref.Compacted = ref.Compacted || compacted
	}
	files := make([]FileRef, 0, len(byName))
	for _, r := range byName {
		files = append(files, *r)
	}
	sort.Slice(files, func(i, j int) bool { return replication.CompareBinlogNames(files[i].Name, files[j].Name) < 0 })
	return files, nil
}

// Segments lists the stored segments of a file, in offset order.
func (c Catalog) Segments(ctx context.Context, tl, file string) ([]SegmentRef, error) {
	prefix := c.Layout.FilePrefix(tl, file)
	entries, err := c.Store.List(ctx, prefix)
	if err != nil {
		return nil, fmt.Errorf("list segments of %s/%s: %w", tl, file, err)
	}
	var segs []SegmentRef
	for _, e := range entries {
		if e.Dir {
			continue
		}
		start, end, err := ParseSegmentName(e.Key)
		if err != nil {
			continue // not ours; verify reports strays
		}
		segs = append(segs, SegmentRef{Key: e.Key, Start: start, End: end, StoredSize: e.Size})
	}
	sort.Slice(segs, func(i, j int) bool { return segs[i].Start < segs[j].Start })
	return segs, nil
}

// ReadIndex reads the index of a complete file.
func (c Catalog) ReadIndex(ctx context.Context, tl, file string) (*FileIndex, error) {
	var ix FileIndex
	if err := c.readJSON(ctx, c.Layout.IndexKey(tl, file), &ix); err != nil {
		return nil, err
	}
	if err := ix.validate(); err != nil {
		return nil, err
	}
	if ix.File != file {
		return nil, fmt.Errorf("index %s names binlog file %q: it was not written by binarc for this file", c.Layout.IndexKey(tl, file), ix.File)
	}
	return &ix, nil
}

// ReadSegment downloads and decompresses one segment. Its name bounds
// what is read: the stored object may be no larger than its range could
// compress to, and it must decode to exactly its range, never more.
func (c Catalog) ReadSegment(ctx context.Context, key string) ([]byte, error) {
	start, end, err := ParseSegmentName(key)
	if err != nil {
		return nil, fmt.Errorf("read segment %s: %w", key, err)
	}
	if end-start > MaxSegmentSize {
		return nil, fmt.Errorf("segment %s is corrupt: its range of %d bytes is larger than any segment binarc writes (%d)", key, end-start, uint64(MaxSegmentSize))
	}
	data, _, err := objstore.ReadAtMost(ctx, c.Store, key, sealedBound(StoredBound(end-start))+sign.TrailerSize)
	if err != nil {
		return nil, fmt.Errorf("read segment %s: %w", key, err)
	}
	if data, err = c.Trust.Check(key, data); err != nil {
		return nil, err
	}
	if !crypt.IsSealed(data) {
		if err := c.checkPlainAllowed(ctx, key); err != nil {
			return nil, err
		}
	}
	return c.decodeSegmentObject(key, data)
}

func (c Catalog) readJSON(ctx context.Context, key string, v any) error {
	data, _, err := objstore.ReadSmall(ctx, c.Store, key)
	if err != nil {
		return fmt.Errorf("read %s: %w", key, err)
	}
	if data, err = c.Trust.Check(key, data); err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("read %s: not valid JSON: %w", key, err)
	}
	return nil
}

// PutOnce writes a small JSON object that must never change once written:
// if the key already holds the same bytes, that is success (a retry of our
// own write); other content is a conflict.
func PutOnce(ctx context.Context, store objstore.Store, key string, data []byte) error {
	_, err := store.Put(ctx, key, data, objstore.PutOptions{IfAbsent: true})
	if !errors.Is(err, objstore.ErrExist) {
		return err
	}
	got, _, err := objstore.ReadSmall(ctx, store, key)
	if err != nil {
		return err
	}
	if bytes.Equal(got, data) {
		return nil
	}
	return fmt.Errorf("%w: %s already exists with other content", ErrConflict, key)
}

// PutOnce writes a small object that never changes once written (a
// conditional put), signed when the catalog has a Signer: the same content
// already there is success, other content a conflict.
func (c Catalog) PutOnce(ctx context.Context, key string, data []byte) error {
	return PutOnce(ctx, c.Store, key, c.Signer.Sign(key, data))
}

// segmentInfoFromStore describes a stored segment.
func (c Catalog) segmentInfoFromStore(ctx context.Context, ref SegmentRef) (SegmentInfo, error) {
	f, err := c.ReadSegmentFacts(ctx, ref)
	return f.SegmentInfo, err
}

// WriteFileIndex writes the index of a complete file. known are the
// segments the caller stored itself, the tail of the file; the ones before
// them are read back from the store.
func WriteFileIndex(ctx context.Context, store objstore.Store, layout Layout, tl, file, next string, known []SegmentInfo) error {
	return Catalog{Store: store, Layout: layout}.WriteFileIndex(ctx, tl, file, next, known)
}

// WriteFileIndex is the package's WriteFileIndex, signed with the
// catalog's sign.Signer.
func (c Catalog) WriteFileIndex(ctx context.Context, tl, file, next string, known []SegmentInfo) error {
	var head []SegmentInfo
	if len(known) == 0 || known[0].Start != 0 {
		refs, err := c.Segments(ctx, tl, file)
		if err != nil {
			return err
		}
		limit := uint64(1<<64 - 1)
		if len(known) > 0 {
			limit = known[0].Start
		}
		for _, r := range refs {
			if r.Start >= limit {
				break
			}
			si, err := c.segmentInfoFromStore(ctx, r)
			if err != nil {
				return err
			}
			head = append(head, si)
		}
	}
	ix := newFileIndex(tl, file, next, append(head, known...))
	if err := ix.validate(); err != nil {
		return fmt.Errorf("%w: cannot index %s/%s: %v", ErrConflict, tl, file, err)
	}
	return c.PutOnce(ctx, c.Layout.IndexKey(tl, file), MarshalJSON(ix))
}

// CheckLayoutVersion refuses to change an archive written by a newer
// binarc, whose layout this one may not understand. A cluster with no
// layout.json (nothing archived yet) passes.
func (c Catalog) CheckLayoutVersion(ctx context.Context) error {
	data, _, err := objstore.ReadSmall(ctx, c.Store, c.Layout.LayoutKey())
	if errors.Is(err, objstore.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", c.Layout.LayoutKey(), err)
	}
	if data, err = c.Trust.Check(c.Layout.LayoutKey(), data); err != nil {
		return err
	}
	_, err = CheckLayoutInfo(c.Layout, data)
	return err
}

// CheckLayoutInfo reads layout.json (its signature, if any, stripped
// unchecked) and refuses a layout this binarc does not know.
func CheckLayoutInfo(l Layout, data []byte) (LayoutInfo, error) {
	data, _ = sign.SplitSigned(data)
	var li LayoutInfo
	if err := json.Unmarshal(data, &li); err != nil || li.Version == 0 {
		return li, fmt.Errorf("%s is not a binarc layout file; is --store pointing at something else?", l.LayoutKey())
	}
	if li.Version > LayoutVersion {
		return li, fmt.Errorf("the archive of cluster %q has layout version %d, this binarc knows %d: upgrade binarc", l.Cluster, li.Version, LayoutVersion)
	}
	return li, nil
}
