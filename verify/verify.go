package verify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/archive/objstore"
	"github.com/binarc/binarc/archive/sign"
	"github.com/binarc/binarc/internal/redact"
)

// Severity says whether a finding makes the archive unsound.
type Severity string

const (
	// SeverityProblem: something is missing, corrupt or inconsistent; a
	// restore that needs it fails, or restores the wrong thing.
	SeverityProblem Severity = "problem"
	// SeverityNote: worth knowing, harmless to restores: an object binarc
	// did not write, an incomplete snapshot, leftovers a later run removes.
	SeverityNote Severity = "note"
)

// Finding is one thing Verify found, with its coordinates; the ones that
// do not apply are empty.
type Finding struct {
	Severity Severity `json:"severity"`
	Timeline string   `json:"timeline,omitempty"`
	File     string   `json:"binlog,omitempty"`
	Offset   *uint64  `json:"offset,omitempty"`
	Key      string   `json:"key,omitempty"`
	Snapshot string   `json:"snapshot,omitempty"`
	Message  string   `json:"message"`
}

// String is the coordinates, then the message:
// "timeline=… binlog=… offset=… key=…: message".
func (f Finding) String() string {
	var b strings.Builder
	add := func(k, v string) {
		if v != "" {
			fmt.Fprintf(&b, "%s=%s ", k, v)
		}
	}
	add("timeline", f.Timeline)
	add("binlog", f.File)
	if f.Offset != nil {
		add("offset", fmt.Sprint(*f.Offset))
	}
	add("snapshot", f.Snapshot)
	add("key", f.Key)
	if b.Len() == 0 {
		return redact.Control(f.Message)
	}
	// Keys and names come from the bucket: a terminal must not get their
	// escape sequences (--json keeps them, escaped by JSON).
	return redact.Control(strings.TrimSuffix(b.String(), " ") + ": " + f.Message)
}

// VerifyCounts says how much Verify read.
type VerifyCounts struct {
	Timelines int `json:"timelines"`
	Files     int `json:"files"`
	// Segments and Compacted are the segment objects and compacted files
	// read and decoded.
	Segments  int `json:"segments"`
	Compacted int `json:"compacted"`
	// StoredBytes is what they take in the store; BinlogBytes the binlog
	// they hold.
	StoredBytes   int64  `json:"stored_bytes"`
	BinlogBytes   uint64 `json:"binlog_bytes"`
	Events        int64  `json:"events"`
	Snapshots     int    `json:"snapshots"`
	SnapshotBytes int64  `json:"snapshot_bytes"`
}

func (c *VerifyCounts) add(o VerifyCounts) {
	c.Timelines += o.Timelines
	c.Files += o.Files
	c.Segments += o.Segments
	c.Compacted += o.Compacted
	c.StoredBytes += o.StoredBytes
	c.BinlogBytes += o.BinlogBytes
	c.Events += o.Events
	c.Snapshots += o.Snapshots
	c.SnapshotBytes += o.SnapshotBytes
}

// VerifyReport is what Verify found.
type VerifyReport struct {
	LayoutVersion int          `json:"layout_version"`
	Counts        VerifyCounts `json:"checked"`
	Problems      int          `json:"problems"`
	Notes         int          `json:"notes"`
	Findings      []Finding    `json:"findings"`
}

// OK says no problem was found (notes may have been).
func (r *VerifyReport) OK() bool { return r.Problems == 0 }

// VerifyOptions tune Verify.
type VerifyOptions struct {
	// SkipSnapshotData lists complete snapshots without re-reading their
	// data (the manifests are still read).
	SkipSnapshotData bool
	// Report, if set, receives each finding as it is found.
	Report func(Finding)
	// Concurrency is how many segments are fetched at once (default 4);
	// each one fetched is held in memory until it is checked.
	Concurrency int
	// Settle: while an archiver runs, the newest timeline can show
	// segments stored past one still uploading. When it does, Verify waits
	// this long and lists the timeline again before calling the hole a
	// problem. 0 lists once.
	Settle time.Duration
	// NoteUnsigned, when the catalog has no Trust (no --trust-key), adds
	// one note counting the objects read that are not signed.
	NoteUnsigned bool
}

// Verify re-reads the cluster's whole archive and checks it: layout.json;
// every timeline's manifest and how timelines follow each other; for every
// binlog file, its index against the stored segments, every segment's (or
// the compacted object's) zstd checksums, every event's size, end position
// and CRC32, and that events, segments and files run on without a gap; the
// objects that are not binarc's; and every complete snapshot's data against
// its manifest (Snapshot). It holds at most opts.Concurrency segments at a time and
// never writes to the store.
//
// Each problem found is a Finding in the report; the error is for what
// stops the check itself (the store cannot be listed, ctx ended, no
// archive for the cluster).
func Verify(ctx context.Context, c archive.Catalog, opts VerifyOptions) (*VerifyReport, error) {
	return verifyWith(ctx, c, opts, snapshotProblem)
}

// verifyWith is Verify with the snapshot check given (tests give their own).
func verifyWith(ctx context.Context, c archive.Catalog, opts VerifyOptions, checkSnapshot func(context.Context, archive.Catalog, string) error) (*VerifyReport, error) {
	if opts.Concurrency <= 0 {
		opts.Concurrency = 4
	}
	v := &verifier{c: c, opts: opts, rep: &VerifyReport{Findings: []Finding{}}, checkSnapshot: checkSnapshot}
	unsigned := &unsignedObjects{}
	if v.c.Trust == nil && opts.NoteUnsigned {
		// Without --trust-key nothing is refused; unsigned objects are
		// counted, and noted once at the end.
		v.c.Trust = sign.NoteUnsigned(unsigned.add)
	}
	root, err := c.Store.List(ctx, c.Layout.Root())
	if err != nil {
		return nil, fmt.Errorf("list cluster %q: %w", c.Layout.Cluster, err)
	}
	if len(root) == 0 {
		return nil, fmt.Errorf("cluster %q has no archive in %s: check --store and --cluster (binarc ls --store URL lists clusters)", c.Layout.Cluster, c.Store)
	}
	if err := needIdentity(ctx, c); err != nil {
		return nil, err
	}
	v.checkRoot(root)
	if err := v.checkLayout(ctx); err != nil {
		return nil, err
	}
	if err := v.timelines(ctx); err != nil {
		return nil, err
	}
	if err := v.snapshots(ctx); err != nil {
		return nil, err
	}
	unsigned.report(v)
	return v.rep, nil
}

type verifier struct {
	c    archive.Catalog
	opts VerifyOptions
	rep  *VerifyReport
	// checkSnapshot is snapshotProblem outside tests.
	checkSnapshot func(ctx context.Context, c archive.Catalog, id string) error
}

func (v *verifier) emit(f Finding) {
	if f.Severity == SeverityProblem {
		v.rep.Problems++
	} else {
		v.rep.Notes++
	}
	v.rep.Findings = append(v.rep.Findings, f)
	if v.opts.Report != nil {
		v.opts.Report(f)
	}
}

func (v *verifier) problem(f Finding, format string, args ...any) {
	v.emit(f.with(SeverityProblem, format, args...))
}

func (v *verifier) note(f Finding, format string, args ...any) {
	v.emit(f.with(SeverityNote, format, args...))
}

// with is f with its severity and message set.
func (f Finding) with(s Severity, format string, args ...any) Finding {
	f.Severity, f.Message = s, fmt.Sprintf(format, args...)
	return f
}

// stray notes an object or folder binarc did not write there.
func (v *verifier) stray(e objstore.Entry) {
	what := "object"
	if e.Dir {
		what = "folder"
	}
	v.note(Finding{Key: e.Key}, "stray %s: binarc did not write it and ignores it", what)
}

// checkRoot notes what the cluster's folder holds besides binarc's.
func (v *verifier) checkRoot(root []objstore.Entry) {
	l := v.c.Layout
	known := map[string]bool{
		l.LayoutKey(): true, l.LeaseKey(): true, l.SnapshotLeaseKey(): true, l.PruneLeaseKey(): true,
		l.TimelinesPrefix(): true, l.SnapshotsPrefix(): true, l.DrillsPrefix(): true,
	}
	for _, e := range root {
		if !known[e.Key] {
			v.stray(e)
		}
	}
}

// checkLayout checks layout.json: there, readable, a version this binarc
// knows.
func (v *verifier) checkLayout(ctx context.Context) error {
	key := v.c.Layout.LayoutKey()
	at := Finding{Key: key}
	data, _, err := objstore.ReadSmall(ctx, v.c.Store, key)
	switch {
	case errors.Is(err, objstore.ErrNotExist):
		v.problem(at, "layout.json is missing: binarc stream writes it when it creates the archive, and checks it at every start")
		return nil
	case err != nil:
		if ctx.Err() != nil {
			return ctx.Err()
		}
		v.problem(at, "cannot read layout.json: %v", err)
		return nil
	}
	if data, err = v.c.Trust.Check(key, data); err != nil {
		v.problem(at, "%v", err)
		return nil
	}
	var li archive.LayoutInfo
	if err := json.Unmarshal(data, &li); err != nil {
		v.problem(at, "layout.json is not valid JSON: %v", err)
		return nil
	}
	v.rep.LayoutVersion = li.Version
	switch {
	case li.Version > archive.LayoutVersion:
		v.problem(at, "layout version %d is newer than this binarc knows (%d): upgrade binarc to verify this archive", li.Version, archive.LayoutVersion)
	case li.Version < 1:
		v.problem(at, "layout version %d is not a version binarc writes (1 to %d)", li.Version, archive.LayoutVersion)
	}
	return nil
}

// snapshots checks every snapshot folder: its objects, and through
// the complete ones' data against their manifest.
func (v *verifier) snapshots(ctx context.Context) error {
	l := v.c.Layout
	dirs, err := v.c.Store.List(ctx, l.SnapshotsPrefix())
	if err != nil {
		return fmt.Errorf("list snapshots of cluster %q: %w", l.Cluster, err)
	}
	for _, d := range dirs {
		id := strings.TrimSuffix(strings.TrimPrefix(d.Key, l.SnapshotsPrefix()), "/")
		if !d.Dir {
			v.stray(d)
			continue
		}
		if _, _, err := archive.ParseSnapshotID(id); err != nil {
			v.stray(d)
			continue
		}
		objs, err := v.c.Store.List(ctx, l.SnapshotPrefix(id))
		if err != nil {
			return fmt.Errorf("list snapshot %s: %w", id, err)
		}
		known := map[string]bool{
			l.SnapshotManifestKey(id):                           true,
			l.SnapshotDataKey(id, archive.SnapshotDataPhysical): true,
			l.SnapshotDataKey(id, archive.SnapshotDataLogical):  true,
		}
		complete := false
		var size int64
		for _, o := range objs {
			size += o.Size
			if o.Key == l.SnapshotManifestKey(id) {
				complete = true
			}
			if o.Dir || !known[o.Key] {
				v.stray(o)
			}
		}
		at := Finding{Snapshot: id}
		if !complete {
			v.note(at, "incomplete snapshot (no manifest.json): it failed or is still running; restores never use it")
			continue
		}
		v.rep.Counts.Snapshots++
		v.rep.Counts.SnapshotBytes += size
		if v.opts.SkipSnapshotData {
			continue
		}
		if err := v.checkSnapshot(ctx, v.c, id); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			v.problem(at, "%v", err)
		}
	}
	return nil
}

// needIdentity refuses, as bad input (archive.ErrRequest), to verify an
// encrypted timeline without an identity: verify reads every event. It
// names the oldest such timeline, so the message is the same every run.
func needIdentity(ctx context.Context, c archive.Catalog) error {
	if c.Opener != nil {
		return nil
	}
	enc, err := c.EncryptedTimelines(ctx)
	if err != nil {
		return err
	}
	for _, tl := range slices.Sorted(maps.Keys(enc)) {
		return archive.RequestError(fmt.Errorf("timeline %s of cluster %q is encrypted to %s: verify reads every event, so pass --identity FILE (or BINARC_IDENTITY_FILE) with the key of one of them (binarc verify --snapshot ID checks an encrypted snapshot's size and SHA-256 without one)", tl, c.Layout.Cluster, strings.Join(enc[tl], ", ")))
	}
	return nil
}
