package lease

import (
	"context"
	"slices"
	"time"
)

// Previous is the lease's earlier holder, gone (expired, released or
// dead), when this lease was taken over from it; nil when there was none.
func (l *Lease) Previous() *Info {
	return l.previous
}

// SetStopped records in the lease object what the holder has stopped and
// must start again (nil: nothing), before it stops it: if the holder dies,
// its successor finds it in Previous().Stopped.
func (l *Lease) SetStopped(ctx context.Context, stopped []string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lost != nil {
		return l.lost
	}
	if slices.Equal(l.info.Stopped, stopped) {
		return nil
	}
	l.info.Stopped = stopped
	return l.renew(ctx)
}

// DumpConn is a replication connection: the server as binarc addresses it
// (host:port), the thread id the server gave the connection, and when it
// was recorded (a server that started after that has reused the id).
type DumpConn struct {
	Server   string    `json:"server"`
	ThreadID uint32    `json:"thread_id"`
	Recorded time.Time `json:"recorded"`
}

// SetDump records in the lease object the connection the holder now
// dumps on. MariaDB 10.11 can stop accepting connections when a semi-sync
// replica's old connection went silent and a new dump under the same
// server_id arrives (docs/RELIABILITY.md, finding 14): a successor that
// takes over a dead holder's lease finds the old connection in
// Previous().Dump and ends it first. A record older than the one held
// (two reconnects whose writes crossed) changes nothing.
func (l *Lease) SetDump(ctx context.Context, d DumpConn) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lost != nil {
		return l.lost
	}
	if l.info.Dump != nil && d.Recorded.Before(l.info.Dump.Recorded) {
		return nil
	}
	l.info.Dump = &d
	return l.renew(ctx)
}
