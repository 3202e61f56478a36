// Package retention keeps an archive to a window (binarc prune --keep, and
// --keep on stream and snapshot): it computes the restorable windows (and
// the status binarc ls shows around them, ReadStatus), plans
// what a prune keeps and deletes (the base snapshot, every later one, all
// binlog from the base's coordinates), carries the plan out in a
// crash-safe order under the prune lease, reports it, and runs prunes
// beside a long-running command (Runner).
//
// It must never delete what an in-window restore needs, nor anything a
// running archiver or snapshot may still write: it deletes only whole,
// indexed files and timelines behind every kept snapshot, and whole failed
// snapshots. It must not write anything but deletes and its lease.
package retention
