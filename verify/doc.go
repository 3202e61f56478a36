// Package verify re-reads an archive and says what is wrong with it:
// layout.json, each timeline and how timelines follow each other, every
// binlog file's index against the stored segments, every segment's (or
// compacted object's) zstd checksums, every event's size, position and
// CRC32, contiguity within and across segments and files, stray objects,
// and every complete snapshot's data against its manifest (Snapshot).
// Findings carry the coordinates of what they are about.
//
// It must never write to the store, and must tolerate a concurrent
// archiver, compaction and prune (what they change while it reads is a
// note, not a problem).
package verify
