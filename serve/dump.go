package serve

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/binarc/binarc/internal/progress"
	"github.com/binarc/binarc/replication"
	"github.com/go-mysql-org/go-mysql/mysql"
	gomysql "github.com/go-mysql-org/go-mysql/replication"
)

// streamer is one COM_BINLOG_DUMP: the files from the start position on,
// with the fake events a primary adds, until the stop.
type streamer struct {
	s   *session
	cfg Config
	req dumpRequest
	// capability is the client's @mariadb_slave_capability: what it
	// understands of MariaDB's events (request.go).
	capability int
	files      []File
	idx        int
	crc        bool // the stream's checksum setting, for the events binarc makes
	// gtid holds, in GTID mode, the replica's position in each domain not
	// yet reached: groups up to it are not sent.
	gtid map[uint32]gtidEntry
	// exclude is, in a MySQL dump by GTID set, the replica's executed
	// set: its transactions are not sent.
	exclude *replication.GTIDState
	// state is the binlog's GTID state where the stream stands, and
	// fakeList asks for it to be sent once the replica's own last group
	// has been passed over.
	state    map[uint32]gtidEntry
	fakeList bool
	grp      groups
	skipping bool
	skip     map[string]bool
	// end is where a stream with no other stop ends: the last archived
	// transaction boundary when the dump began; stopAt is Stop.Position
	// in the stream's files (a name may repeat across timelines).
	end      *streamPos
	stopAt   *streamPos
	named    bool                 // the replica asked for a file by name
	sent     replication.Position // end of the last event sent (or read)
	lastTx   replication.Position // end of the last transaction sent
	lastSend time.Time
	buf      []byte
	scratch  []byte // an event rewritten for an old client
	// slotCtx is the dump's context while it holds a read slot.
	slotCtx context.Context
	prog    ProgressInfo
	progAt  time.Time
	logged  *progress.Reporter
}

// streamPos is a position in the stream's list of files: file names may
// repeat across timeline joins, list indexes do not.
type streamPos struct {
	idx int
	off uint64
}

// dumpError is a refusal the replica shows in Last_IO_Error; MariaDB's
// replicas stop their IO thread on this code rather than retry.
func dumpError(format string, args ...any) error {
	return mysql.NewError(mysql.ER_MASTER_FATAL_ERROR_READING_BINLOG, "binarc serve: "+fmt.Sprintf(format, args...))
}

// errReached ends a file read at the stop.
var errReached = errors.New("stop reached")

// dump answers COM_BINLOG_DUMP: binlog_pos (4), flags (2), server_id (4),
// file name. With @slave_connect_state set (MASTER_USE_GTID), the file
// and position are ignored and the GTID position decides, as in MariaDB.
func (s *session) dump(ctx context.Context, body []byte) error {
	req, err := parseDump(body)
	if err != nil {
		return s.conn.WriteValue(mysql.NewError(mysql.ER_MALFORMED_PACKET, "binarc serve: "+err.Error()))
	}
	s.serverID = req.ServerID
	st := s.newStreamer(req)
	return st.stream(ctx, func() (uint64, error) { return st.start(ctx, req.File, req.Pos) })
}

// stream runs a dump that start positions: the refusal, or the events
// until the stop.
func (st *streamer) stream(ctx context.Context, start func() (uint64, error)) error {
	s, req := st.s, st.req
	startPos, err := start()
	if err != nil {
		var me *mysql.MyError
		if !errors.As(err, &me) {
			err = dumpError("%v", err)
		}
		s.log.Warn().Err(err).Str("file", req.File).Uint64("pos", req.Pos).Msg("replica's dump refused")
		return s.conn.WriteValue(err)
	}
	s.log.Info().Str("file", st.files[st.idx].Name).Uint64("pos", startPos).Bool("gtid_mode", st.gtid != nil).
		Uint32("replica_server_id", s.serverID).Uint16("flags", req.Flags).Int("capability", st.capability).
		Msg("streaming the archive to a replica")
	err = st.run(ctx, startPos)
	var me *mysql.MyError
	if errors.As(err, &me) {
		s.log.Warn().Err(err).Msg("stream ended with an error sent to the replica")
		return s.conn.WriteValue(err)
	}
	return err
}

// newStreamer prepares a dump of req for the session's client.
func (s *session) newStreamer(req dumpRequest) *streamer {
	st := &streamer{s: s, cfg: s.srv.cfg, req: req, skip: map[string]bool{}, capability: capability(s.vars["mariadb_slave_capability"])}
	for _, g := range st.cfg.Skip {
		st.skip[g] = true
	}
	return st
}

func (st *streamer) srv() *Server { return st.s.srv }

// run streams from startPos in the current file until the stop, then
// idles with heartbeats until the replica leaves.
func (st *streamer) run(ctx context.Context, startPos uint64) error {
	pos := startPos
	first := st.idx
	midFile := startPos > replication.MagicLen
	for {
		f := st.files[st.idx]
		if err := st.send(fakeRotate(st.cfg.ServerID, f.Name, pos, st.crc)); err != nil {
			return err
		}
		head, err := readHead(ctx, st.cfg.Source, f)
		if err != nil {
			return err
		}
		// A file named by the replica is streamed from where it asked.
		entered := pos == replication.MagicLen && !(st.named && st.idx == first)
		if entered {
			if err := head.enteredAt(f); err != nil {
				return err
			}
		}
		st.crc = fileChecksum(head.FDE)
		st.grp.crc = st.crc
		st.state = map[uint32]gtidEntry{}
		for _, e := range head.List {
			// A binlog state may hold a domain once per server: the
			// position in it is the newest.
			if cur, ok := st.state[e.Domain]; !ok || e.Seq > cur.Seq {
				st.state[e.Domain] = e
			}
		}
		if err := st.send(formatDescription(head.FDE, midFile, midFile || len(st.gtid) > 0)); err != nil {
			return err
		}
		midFile = false
		if pos == replication.MagicLen {
			pos = head.End
		}
		if entered {
			// After a timeline join, the new server's file is entered
			// where the shared history ends.
			pos = max(pos, f.Start)
		}
		st.sent = replication.Position{File: f.Name, Offset: pos}
		reached, err := st.file(ctx, pos)
		if err != nil || reached {
			if reached {
				err = st.finish(ctx)
			}
			return err
		}
		st.idx++
		pos = replication.MagicLen
	}
}

// file streams the current file from pos to its end (waiting for more,
// when following, until it is complete and a next one exists). It tells
// whether the stop was reached.
func (st *streamer) file(ctx context.Context, pos uint64) (bool, error) {
	for {
		f := st.files[st.idx]
		if pos < f.Size {
			release, err := st.readSlot(ctx)
			if err != nil {
				return false, err
			}
			err = st.cfg.Source.Read(st.slotCtx, f, pos, func(off uint64, h replication.Header, raw []byte) error {
				return st.event(f.Name, off, h, raw)
			})
			release()
			if ferr := st.s.out.Flush(); err == nil && ferr != nil {
				return false, ferr
			}
			if errors.Is(err, errReached) {
				return true, nil
			}
			if errors.Is(err, ErrNotBoundary) {
				return false, dumpError("%v: start the replica at an event boundary (a position SHOW BINLOG EVENTS or binarc binlog events lists)", err)
			}
			if err != nil {
				return false, err
			}
			pos = f.Size
		}
		if f.Complete && st.idx+1 < len(st.files) {
			return false, nil
		}
		if !st.cfg.Follow {
			st.reach()
			return true, nil
		}
		if st.req.NonBlock() {
			// Following, but the client asked not to wait: it has what
			// is archived so far.
			st.s.log.Info().Stringer("at", st.sent).Msg("non-blocking dump has the archive's end")
			return true, nil
		}
		if err := st.wait(ctx); err != nil {
			return false, err
		}
	}
}

// wait polls the source once the stream has caught up, sending
// heartbeats meanwhile.
func (st *streamer) wait(ctx context.Context) error {
	if err := st.s.out.Flush(); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(st.cfg.Poll):
	}
	if err := st.heartbeatIfDue(); err != nil {
		return err
	}
	files, err := st.cfg.Source.Files(ctx)
	if err != nil {
		st.s.log.Warn().Err(err).Msg("reading the archive failed; retrying")
		return nil
	}
	cur := st.files[st.idx]
	for i, f := range files {
		if f.Name == cur.Name && f.Timeline == cur.Timeline {
			if f.Complete && f.Size < st.sent.Offset {
				// A join recorded meanwhile ends this timeline before
				// what the replica already has.
				return dumpError("the replica has binlog of timeline %s up to %s:%d, past where the next timeline takes over (%s:%d): those transactions were lost at the switch and the replica holds them; rebuild it (binarc restore) and replicate again",
					cur.Timeline, cur.Name, st.sent.Offset, f.Name, f.Size)
			}
			st.files, st.idx = files, i
			return nil
		}
	}
	return dumpError("binlog %s is no longer in the archive (pruned while streamed)", cur.Name)
}

// event handles one archived event: stop, skip, or send.
func (st *streamer) event(file string, off uint64, h replication.Header, raw []byte) error {
	end := off + uint64(len(raw))
	if err := st.stopBefore(file, off, h); err != nil {
		return err
	}
	if st.grp.begins(off, h, raw) {
		if g, err := parseGTID(st.grp.GTID); err == nil && h.Type == gomysql.MARIADB_GTID_EVENT {
			st.state[g.Domain] = g
		}
		st.skipping = st.grp.GTID != "" && st.skip[st.grp.GTID]
		if !st.skipping && st.exclude != nil && h.Type == gomysql.GTID_EVENT {
			st.skipping = st.exclude.Has(st.grp.GTID) // the MySQL replica has it
		}
		if !st.skipping && len(st.gtid) > 0 && h.Type == gomysql.MARIADB_GTID_EVENT {
			var err error
			if st.skipping, err = st.beforeReplicaPosition(st.grp.GTID); err != nil {
				return err
			}
		}
	}
	ends := st.grp.ends(h, raw)
	if !st.skipping {
		if err := st.sendArchived(file, off, h, raw); err != nil {
			return err
		}
		st.prog.Bytes += uint64(len(raw))
	}
	st.sent = replication.Position{File: file, Offset: end}
	if ends {
		if st.fakeList {
			// As MariaDB does (send_events): the replica learns where its
			// position lies in this stream, so MASTER_POS_WAIT works.
			st.fakeList = false
			if err := st.send(fakeGTIDList(st.cfg.ServerID, uint32(end), st.stateList(), st.crc)); err != nil {
				return err
			}
		}
		if st.skipping {
			st.prog.Skipped++
		} else {
			st.prog.Transactions++
			st.lastTx = st.sent
		}
		st.skipping = false
		st.progress(false)
		stop := st.cfg.Stop
		if (stop.GTID != "" && stop.GTID == st.grp.GTID) || (st.stopAt != nil && st.stopAt.idx == st.idx && st.stopAt.off == end) {
			st.reach()
			return errReached
		}
	}
	return nil
}

// stopBefore tells whether the stream stops before this event.
func (st *streamer) stopBefore(file string, off uint64, h replication.Header) error {
	stop := st.cfg.Stop
	begins := !st.grp.open && (h.Type == gomysql.MARIADB_GTID_EVENT || h.Type == gomysql.GTID_EVENT || h.Type == gomysql.ANONYMOUS_GTID_EVENT || h.Type == gomysql.QUERY_EVENT)
	if begins && !stop.Time.IsZero() && int64(h.Timestamp) >= stop.Time.Unix() {
		st.reach()
		return errReached
	}
	for _, p := range []*streamPos{st.stopAt, st.end} {
		if p == nil {
			continue
		}
		if st.idx > p.idx || (st.idx == p.idx && off >= p.off) {
			if st.grp.open && !st.skipping {
				return dumpError("the stop position %s:%d is inside a transaction (it began at %s:%d): stop at its start or its end", st.files[p.idx].Name, p.off, file, st.grp.Start)
			}
			st.reach()
			return errReached
		}
	}
	return nil
}

// beforeReplicaPosition tells whether a group is one the replica has
// already (GTID mode), and marks its domain reached at the replica's own
// GTID.
func (st *streamer) beforeReplicaPosition(gtid string) (bool, error) {
	g, err := parseGTID(gtid)
	if err != nil {
		return false, nil
	}
	p, ok := st.gtid[g.Domain]
	if !ok {
		return false, nil
	}
	switch {
	case g.Server == p.Server && g.Seq == p.Seq:
		delete(st.gtid, g.Domain)
		st.fakeList = true
		return true, nil
	case g.Seq > p.Seq:
		return false, dumpError("the replica's GTID position %s is not in the archive: domain %d goes on with %s without it; the replica has transactions the archived primary never wrote",
			p, g.Domain, g)
	}
	return true, nil
}

// stateList is the GTID state in domain order.
func (st *streamer) stateList() []gtidEntry {
	out := make([]gtidEntry, 0, len(st.state))
	for _, e := range st.state {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Domain < out[j].Domain })
	return out
}
