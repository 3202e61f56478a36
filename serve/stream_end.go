package serve

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/binarc/binarc/internal/progress"
	"github.com/binarc/binarc/replication"
	"github.com/go-mysql-org/go-mysql/mysql"
	gomysql "github.com/go-mysql-org/go-mysql/replication"
)

// reach records that the stream stopped where it stands.
func (st *streamer) reach() {
	st.progress(true)
	st.s.log.Info().Stringer("at", st.sent).Uint64("transactions", st.prog.Transactions).Uint64("skipped", st.prog.Skipped).Msg("stream reached its stop")
	if st.cfg.Reached != nil {
		st.cfg.Reached(st.lastTx)
	}
}

// progress reports how far the stream has got: to Config.Progress, and
// as a log line every 10 s.
func (st *streamer) progress(force bool) {
	if !force && time.Since(st.progAt) < 250*time.Millisecond {
		return
	}
	st.progAt = time.Now()
	st.prog.Position = st.sent
	if st.logged == nil {
		st.logged = &progress.Reporter{What: "stream", Items: "transactions", Log: st.s.log, Every: 10 * time.Second}
	}
	st.logged.Update(progress.State{Bytes: st.prog.Bytes, Items: st.prog.Transactions})
	if st.cfg.Progress != nil {
		st.cfg.Progress(st.prog)
	}
}

// finish ends a stream that reached its stop or the archive's end: an
// EOF packet to a client that asked for a non-blocking dump (as MariaDB
// does, so mariadb-binlog without --stop-never returns), else heartbeats
// until the client leaves.
func (st *streamer) finish(ctx context.Context) error {
	if !st.req.NonBlock() {
		return st.idle(ctx)
	}
	st.s.log.Info().Stringer("at", st.sent).Msg("non-blocking dump sent; EOF")
	// EOF: header, no warnings, status SERVER_STATUS_AUTOCOMMIT.
	return st.s.conn.WritePacket([]byte{0, 0, 0, 0, mysql.EOF_HEADER, 0, 0, 2, 0})
}

// slotted is a Source whose file reads share a bounded pool of slots:
// each read holds a decoder and buffers, so many concurrent streams would
// otherwise grow serve's memory with their number.
type slotted interface {
	readSlots() chan struct{}
}

// readSlot takes a read slot when the source has a pool, sending the
// client heartbeats while it waits (so that a replica does not time out),
// and returns its release.
func (st *streamer) readSlot(ctx context.Context) (func(), error) {
	sl, ok := st.cfg.Source.(slotted)
	if !ok || sl.readSlots() == nil {
		st.slotCtx = ctx
		return func() {}, nil
	}
	slots := sl.readSlots()
	for {
		select {
		case slots <- struct{}{}:
			st.slotCtx = context.WithValue(ctx, slotHeld{}, true)
			return func() { <-slots; st.slotCtx = nil }, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
		if err := st.heartbeatIfDue(); err != nil {
			return nil, err
		}
	}
}

// slotHeld marks a context whose reader holds a read slot already (the
// streamer's, taken with heartbeats), so that Read does not take a second.
type slotHeld struct{}

// takeSlot holds one of slots for a read that did not take one itself
// (file heads, the search for the last transaction boundary).
func takeSlot(ctx context.Context, slots chan struct{}) (func(), error) {
	if slots == nil || ctx.Value(slotHeld{}) != nil {
		return func() {}, nil
	}
	select {
	case slots <- struct{}{}:
		return func() { <-slots }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// idle keeps the connection of a stream that reached its stop, as an idle
// primary does, until the replica leaves or serve stops.
func (st *streamer) idle(ctx context.Context) error {
	for {
		if err := st.s.out.Flush(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
		if err := st.heartbeatIfDue(); err != nil {
			return err
		}
	}
}

func (st *streamer) heartbeatIfDue() error {
	period := 30 * time.Second
	if v, ok := st.s.vars["master_heartbeat_period"]; ok && v != nil {
		if ns, err := strconv.ParseInt(fmt.Sprint(v), 10, 64); err == nil && ns > 0 {
			period = time.Duration(ns)
		}
	}
	if time.Since(st.lastSend) < period {
		return nil
	}
	if err := st.send(heartbeat(st.cfg.ServerID, st.sent.File, st.sent.Offset, st.crc)); err != nil {
		return err
	}
	return st.s.out.Flush()
}

// sendArchived sends an archived event the way MariaDB's
// send_event_to_slave does for this client: as it is, left out, or
// rewritten for a client that does not understand it (eventCompat).
func (st *streamer) sendArchived(file string, off uint64, h replication.Header, raw []byte) error {
	standalone := h.Type == gomysql.MARIADB_GTID_EVENT && st.grp.kind == groupStandalone
	how := eventCompat(h.Type, st.capability, st.req.Annotate(), standalone)
	if how == sendAsIs {
		return st.send(raw)
	}
	if how == sendNot {
		return nil
	}
	st.scratch = append(st.scratch[:0], raw...)
	var err error
	if how == sendBegin {
		err = beginEvent(st.scratch, st.crc)
	} else {
		err = dummyEvent(st.scratch, st.crc)
	}
	if err != nil {
		return dumpError("binlog=%s offset=%d: %v", file, off, err)
	}
	return st.send(st.scratch)
}

// send writes one event packet: an OK byte, then the event.
func (st *streamer) send(ev []byte) error {
	n := 5 + len(ev)
	if cap(st.buf) < n {
		st.buf = make([]byte, n)
	}
	b := st.buf[:n]
	b[4] = mysql.OK_HEADER
	copy(b[5:], ev)
	st.lastSend = time.Now()
	return st.s.conn.WritePacket(b)
}

// checksumVar reads @master_binlog_checksum.
func checksumVar(v any) bool { return v != nil && fmt.Sprint(v) == "CRC32" }
