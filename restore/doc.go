// Package restore brings a server back to a point in time: it parses the
// target (a time, a binlog position, a GTID, latest), picks the snapshot to
// start from, plans the archived binlog from the snapshot's coordinates to
// the target (fetching and checking every byte first), restores the
// snapshot (a physical one into a data directory, through a temporary
// server it starts and stops; a logical one into a running server), and
// replays the binlog with the server's own client programs. It also owns
// the transaction scanner that binarc binlog events uses.
//
// It must not write to the store: a restore only reads the archive. It must
// not take backups (package snapshot) or know object keys beyond what
// package archive exposes.
package restore
