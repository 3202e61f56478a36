// Package drill proves, on a schedule, that the archive restores: it runs
// the restore binarc restore --datadir runs (the newest snapshot and the
// archived binlog, in the restore's jail) into a scratch directory, starts
// a temporary server on the result, and compares it with the live
// cluster at the same transaction boundary: per-table checksums against a
// replica paused there (Compare), or, without a replica, CHECK TABLE and
// the GTID position against the manifest and the archive (Check). The
// report, with the restore's time split into its phases, is stored in the
// bucket as a drill record (archive.Layout.DrillKey) and exported as
// metrics.
//
// It owns the drill records and the drill metrics. It must not write to
// the store anything but its own record, change the archive, or leave the
// replica's replication threads otherwise than it found them.
package drill
