// Package archive turns a primary's binlog stream into zstd segments in an
// object store, and reads them back. It is the only package that knows the
// object layout; this file owns every key.
//
// Layout (format version 2), all keys relative to the store's prefix:
//
//	<cluster>/layout.json                                     format version of this cluster's archive
//	<cluster>/lease.json                                      the single writer's lease
//	<cluster>/binlog/<timeline>/timeline.json                 why and where the timeline starts, which server
//	<cluster>/binlog/<timeline>/<file>/<start>-<end>.zst      a segment: bytes [start,end) of <file>, zstd
//	<cluster>/binlog/<timeline>/<file>.index.json             written once <file> is complete and all its segments are stored
//	<cluster>/binlog/<timeline>/join.json                     where the timeline's history meets the previous one's (version 2)
//
// <start> and <end> are 20-digit zero-padded decimal offsets (wide enough for
// any uint64), so names sort in offset order. <timeline> is
// "<seq:06d>-<UTC yyyymmddThhmmssZ>", so names sort by time.
//
// It owns the write path (segmenter, uploader, archiver, lease, compaction)
// and reading archived bytes back (Catalog, Rebuild). It must not run client
// programs or restore (package restore), verify (package verify) or prune
// (package retention).
package archive

import (
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"
)

// LayoutVersion is the newest version of the object layout this binarc
// reads and writes: 3, an archive with encrypted timelines (see sealed.go).
// An archive without encryption is written as version 2 (GTID states and
// joins, see gtidstart.go and docs/FORMAT.md); version 1 archives are read
// as they are.
const LayoutVersion = LayoutVersionEncrypted

// LayoutVersionPlain is the version of an archive, timeline or index
// without encryption.
const LayoutVersionPlain = 2

// Layout builds and parses the keys of one cluster's archive.
type Layout struct {
	Cluster string
}

// ValidateName checks a cluster, timeline or binlog file name: it becomes a
// path component, so it must be non-empty and free of "/" and leading dots.
func ValidateName(kind, name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%s name is empty", kind)
	case strings.ContainsAny(name, "/\\") || strings.HasPrefix(name, "."):
		return fmt.Errorf("%s name %q may not contain '/' or start with '.'", kind, name)
	case len(name) > 200:
		return fmt.Errorf("%s name %q is longer than 200 bytes", kind, name)
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%s name %q contains a control character", kind, name)
		}
	}
	return nil
}

func (l Layout) Root() string { return l.Cluster + "/" }

// LayoutKey is the object recording the format version.
func (l Layout) LayoutKey() string { return l.Root() + "layout.json" }

// LeaseKey is the single-writer lease object.
func (l Layout) LeaseKey() string { return l.Root() + "lease.json" }

// Rewritten tells whether binarc rewrites or deletes the object at key in
// normal operation: the leases (renewed, released), layout.json (upgraded)
// and the probes that check the store's conditional writes beside a lease
// (written twice, then deleted). Such objects cannot carry an Object Lock
// retention; every other object of the archive is written once.
func (l Layout) Rewritten(key string) bool {
	switch key {
	case l.LeaseKey(), l.SnapshotLeaseKey(), l.PruneLeaseKey(), l.LayoutKey():
		return true
	}
	return strings.HasPrefix(key, l.Root()+ProbePrefix)
}

// ProbePrefix starts the name of the probe object, beside the leases, with
// which binarc checks that the store honours conditional writes
// (honesty.go); the probe is deleted once checked.
const ProbePrefix = "probe-"

// TimelinesPrefix is the folder holding one folder per timeline.
func (l Layout) TimelinesPrefix() string { return l.Root() + "binlog/" }

// TimelinePrefix is the folder of one timeline.
func (l Layout) TimelinePrefix(tl string) string { return l.TimelinesPrefix() + tl + "/" }

// TimelineKey is the manifest of one timeline.
func (l Layout) TimelineKey(tl string) string { return l.TimelinePrefix(tl) + "timeline.json" }

// JoinKey is where timeline tl records how its history meets the
// previous timeline's (layout version 2).
func (l Layout) JoinKey(tl string) string { return l.TimelinePrefix(tl) + "join.json" }

// FilePrefix is the folder of the live segments of one binlog file.
func (l Layout) FilePrefix(tl, file string) string { return l.TimelinePrefix(tl) + file + "/" }

// CompactedKey is the single object a complete file's segments are
// compacted into: their zstd frames, concatenated in offset order.
func (l Layout) CompactedKey(tl, file string) string {
	return l.TimelinePrefix(tl) + file + segmentSuffix
}

// ParseCompactedName returns the binlog file a compacted object is for.
func ParseCompactedName(name string) (file string, ok bool) {
	base := path.Base(name)
	if strings.HasSuffix(base, indexSuffix) {
		return "", false
	}
	return strings.CutSuffix(base, segmentSuffix)
}

// IndexKey is the index of a complete binlog file.
func (l Layout) IndexKey(tl, file string) string { return l.TimelinePrefix(tl) + file + ".index.json" }

// SegmentKey is the object of bytes [start,end) of file.
func (l Layout) SegmentKey(tl, file string, start, end uint64) string {
	return l.FilePrefix(tl, file) + FormatSegmentName(start, end)
}

const segmentSuffix = ".zst"
const indexSuffix = ".index.json"

// FormatSegmentName is "<start:020d>-<end:020d>.zst".
func FormatSegmentName(start, end uint64) string {
	return fmt.Sprintf("%020d-%020d%s", start, end, segmentSuffix)
}

// ParseSegmentName reverses FormatSegmentName; it accepts a bare name or a
// full key.
func ParseSegmentName(name string) (start, end uint64, err error) {
	base := path.Base(name)
	s, ok := strings.CutSuffix(base, segmentSuffix)
	if !ok || len(s) != 41 || s[20] != '-' {
		return 0, 0, fmt.Errorf("%q is not a segment name (<start:020d>-<end:020d>.zst)", base)
	}
	start, err1 := strconv.ParseUint(s[:20], 10, 64)
	end, err2 := strconv.ParseUint(s[21:], 10, 64)
	if err1 != nil || err2 != nil || end <= start {
		return 0, 0, fmt.Errorf("%q is not a segment name: bad offsets", base)
	}
	return start, end, nil
}

// ParseIndexName returns the binlog file an index object name is for.
func ParseIndexName(name string) (file string, ok bool) {
	return strings.CutSuffix(path.Base(name), indexSuffix)
}

const timelineTimeFormat = "20060102T150405Z"

// FormatTimeline names timeline number seq started at t.
func FormatTimeline(seq int, t time.Time) string {
	return fmt.Sprintf("%06d-%s", seq, t.UTC().Format(timelineTimeFormat))
}

// ParseTimeline reverses FormatTimeline.
func ParseTimeline(name string) (seq int, t time.Time, err error) {
	n, ts, ok := strings.Cut(strings.TrimSuffix(name, "/"), "-")
	if !ok || len(n) != 6 {
		return 0, time.Time{}, fmt.Errorf("%q is not a timeline name (<seq:06d>-<yyyymmddThhmmssZ>)", name)
	}
	seq, err = strconv.Atoi(n)
	if err != nil || seq < 0 {
		return 0, time.Time{}, fmt.Errorf("%q is not a timeline name: bad sequence", name)
	}
	t, err = time.Parse(timelineTimeFormat, ts)
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("%q is not a timeline name: bad time", name)
	}
	return seq, t, nil
}

// Snapshots. A snapshot is a folder holding its data object and, once the
// data is stored whole, its manifest; a folder without manifest.json is an
// incomplete snapshot (one that failed or is still running) and is never
// restored from.
//
//	<cluster>/snapshot.lease.json                 the lease that keeps two snapshots of a cluster from running at once
//	<cluster>/snapshot/<id>/<data>                the backup: backup.xbstream.zst (physical) or dump.sql.zst (logical)
//	<cluster>/snapshot/<id>/manifest.json         written last: method, coordinates, sizes, checksum
//
// <id> is "<UTC yyyymmddThhmmssZ>-<method>", so ids sort by start time.

// SnapshotLeaseKey is the lease of the cluster's snapshot job, separate from
// the stream's lease: the two run at the same time.
func (l Layout) SnapshotLeaseKey() string { return l.Root() + "snapshot.lease.json" }

// PruneLeaseKey is the lease of a prune (binarc prune, or the one binarc
// stream and binarc snapshot run with --keep): one prune of a cluster at a
// time. Prune runs beside the stream and the snapshot job, so it has its
// own lease.
func (l Layout) PruneLeaseKey() string { return l.Root() + "prune.lease.json" }

// SnapshotsPrefix is the folder holding one folder per snapshot.
func (l Layout) SnapshotsPrefix() string { return l.Root() + "snapshot/" }

// SnapshotPrefix is the folder of one snapshot.
func (l Layout) SnapshotPrefix(id string) string { return l.SnapshotsPrefix() + id + "/" }

// SnapshotManifestKey is a snapshot's manifest, the object that makes it
// complete.
func (l Layout) SnapshotManifestKey(id string) string { return l.SnapshotPrefix(id) + "manifest.json" }

// SnapshotDataKey is a snapshot's data object; name is one of the
// SnapshotData* names.
func (l Layout) SnapshotDataKey(id, name string) string { return l.SnapshotPrefix(id) + name }

// Data object names of the two snapshot methods: zstd of the tool's output.
const (
	SnapshotDataPhysical = "backup.xbstream.zst"
	SnapshotDataLogical  = "dump.sql.zst"
)

// FormatSnapshotID names a snapshot of method ("physical", "logical")
// started at t.
func FormatSnapshotID(t time.Time, method string) string {
	return t.UTC().Format(timelineTimeFormat) + "-" + method
}

// ParseSnapshotID reverses FormatSnapshotID; it accepts a trailing "/".
func ParseSnapshotID(id string) (t time.Time, method string, err error) {
	ts, method, ok := strings.Cut(strings.TrimSuffix(id, "/"), "-")
	if !ok || method == "" || ValidateName("snapshot method", method) != nil || strings.Contains(method, "-") {
		return time.Time{}, "", fmt.Errorf("%q is not a snapshot id (<yyyymmddThhmmssZ>-<method>, e.g. 20261125T031500Z-physical)", id)
	}
	t, err = time.Parse(timelineTimeFormat, ts)
	if err != nil {
		return time.Time{}, "", fmt.Errorf("%q is not a snapshot id: bad time %q", id, ts)
	}
	return t, method, nil
}

// Drills. A drill (binarc drill) restores the newest snapshot and the
// archived binlog into a scratch directory and compares the result with
// the live cluster; its record is written once, when it ends:
//
//	<cluster>/drill/<UTC yyyymmddThhmmssZ>.json   one drill's report
//
// Names sort by the drill's start time, so the last one listed is the
// newest.

// DrillsPrefix is the folder holding the drill records.
func (l Layout) DrillsPrefix() string { return l.Root() + "drill/" }

// DrillKey is the record of the drill started at t.
func (l Layout) DrillKey(t time.Time) string { return l.DrillsPrefix() + FormatDrillName(t) }

// FormatDrillName is "<UTC yyyymmddThhmmssZ>.json".
func FormatDrillName(t time.Time) string { return t.UTC().Format(timelineTimeFormat) + ".json" }

// ParseDrillName reverses FormatDrillName; it accepts a bare name or a
// full key.
func ParseDrillName(name string) (time.Time, error) {
	base := path.Base(name)
	ts, ok := strings.CutSuffix(base, ".json")
	t, err := time.Parse(timelineTimeFormat, ts)
	if !ok || err != nil {
		return time.Time{}, fmt.Errorf("%q is not a drill record name (<yyyymmddThhmmssZ>.json)", name)
	}
	return t, nil
}

// Semi-sync fallbacks (--semi-sync): the ranges of a timeline whose
// commits the primary did not wait for binarc to archive, so they are not
// zero-loss protected. Outside binlog/, so listing a timeline's files
// never sees them.
//
//	<cluster>/semisync/<timeline>/<file>@<offset:020d>.open.json     the primary stopped waiting after this position
//	<cluster>/semisync/<timeline>/<file>@<offset:020d>.closed.json   the same range, with where and when it waited again

// UnprotectedPrefix holds the fallback records of timeline tl.
func (l Layout) UnprotectedPrefix(tl string) string { return l.Root() + "semisync/" + tl + "/" }

// UnprotectedKey names the record of the range starting at file:offset,
// opened or closed.
func (l Layout) UnprotectedKey(tl, file string, offset uint64, closed bool) string {
	return l.UnprotectedPrefix(tl) + FormatUnprotectedName(file, offset, closed)
}

const (
	unprotectedOpen   = ".open.json"
	unprotectedClosed = ".closed.json"
)

// FormatUnprotectedName is "<file>@<offset:020d>.open.json" or
// ".closed.json".
func FormatUnprotectedName(file string, offset uint64, closed bool) string {
	suffix := unprotectedOpen
	if closed {
		suffix = unprotectedClosed
	}
	return fmt.Sprintf("%s@%020d%s", file, offset, suffix)
}

// ParseUnprotectedName reverses FormatUnprotectedName; it accepts a bare
// name or a full key.
func ParseUnprotectedName(name string) (file string, offset uint64, closed bool, err error) {
	base := path.Base(name)
	s, ok := strings.CutSuffix(base, unprotectedOpen)
	if !ok {
		s, closed = strings.CutSuffix(base, unprotectedClosed)
		if !closed {
			return "", 0, false, fmt.Errorf("%q is not a semi-sync fallback record (<file>@<offset:020d>.open.json or .closed.json)", base)
		}
	}
	at := strings.LastIndexByte(s, '@')
	if at <= 0 || len(s)-at-1 != 20 {
		return "", 0, false, fmt.Errorf("%q is not a semi-sync fallback record: want <file>@<offset:020d>", base)
	}
	offset, err = strconv.ParseUint(s[at+1:], 10, 64)
	if err != nil {
		return "", 0, false, fmt.Errorf("%q is not a semi-sync fallback record: bad offset", base)
	}
	return s[:at], offset, closed, nil
}
