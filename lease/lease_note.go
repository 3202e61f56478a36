package lease

import (
	"context"
	"slices"
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
