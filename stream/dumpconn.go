package stream

import (
	"context"
	"time"

	"github.com/binarc/binarc/lease"
	"github.com/binarc/binarc/replication"
)

// Under --semi-sync binarc records its dump connection in the lease, and
// a successor ends the one its predecessor left before dumping under the
// same server_id: MariaDB 10.11 can otherwise stop accepting connections
// when that old connection has gone silent (replication.EndDump;
// docs/RELIABILITY.md, finding 14). Within one process go-mysql already
// kills the previous dump connection on each reconnect.

// endPreviousDump ends the dump connection the lease's previous holder
// recorded, if it is on one of the sources.
func (a *Archiver) endPreviousDump(ctx context.Context, held *lease.Lease) {
	if !a.cfg.SemiSync.Enabled || held.Previous() == nil || held.Previous().Dump == nil {
		return
	}
	d := held.Previous().Dump
	for _, src := range a.cfg.Sources {
		if src.Addr() != d.Server {
			continue
		}
		ended, err := replication.EndDump(ctx, src, d.ThreadID, d.Recorded)
		switch {
		case err != nil:
			a.log.Warn().Err(err).Str("server", d.Server).Uint32("thread", d.ThreadID).
				Msg("could not end the previous binarc's dump connection; if the primary stops answering, KILL that thread on it (MariaDB 10.11 semi-sync, docs/RELIABILITY.md finding 14)")
		case ended:
			a.log.Info().Str("server", d.Server).Uint32("thread", d.ThreadID).
				Msg("ended the previous binarc's dump connection before dumping under the same server_id")
		}
		return
	}
}

// noteDump records the dump connection in the lease (in the background:
// the stream does not wait for the store).
func (a *Archiver) noteDump(held *lease.Lease, server string) func(threadID uint32) {
	if !a.cfg.SemiSync.Enabled {
		return nil
	}
	return func(threadID uint32) {
		d := lease.DumpConn{Server: server, ThreadID: threadID, Recorded: time.Now().UTC()} // stamped here: the writes may cross
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := held.SetDump(ctx, d); err != nil {
				a.log.Debug().Err(err).Msg("could not record the dump connection in the lease")
			}
		}()
	}
}
