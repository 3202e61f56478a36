package replication

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/binarc/binarc/internal/retry"
	"github.com/go-mysql-org/go-mysql/mysql"
	gomysql "github.com/go-mysql-org/go-mysql/replication"
	"github.com/rs/zerolog"
)

// Position is a point in the primary's binlog: a file and a byte offset in it.
type Position struct {
	File   string
	Offset uint64
}

func (p Position) String() string { return fmt.Sprintf("%s:%d", p.File, p.Offset) }

// Handler receives the stream. Calls come from one goroutine, in binlog
// order. A slow handler slows the read from the primary (backpressure); an
// error from it ends Stream with that error.
type Handler interface {
	// Event is called for every event the primary wrote to its binlog, in
	// order and without gaps. The event at offset 4 of a file is its format
	// description event; the 4-byte magic before it is not sent.
	Event(ev Event) error
	// FileDone is called when the stream leaves file, which the primary has
	// closed; next is the file it continues in.
	FileDone(file, next string) error
	// Heartbeat reports the primary's current position while it has nothing
	// to send. It is never archived.
	Heartbeat(pos Position)
}

// BreakError says the archive cannot continue contiguously from the asked
// position on this primary: the file was purged before it was archived, it
// is shorter than the archive (a different file under the same name), or
// the primary is another server. The archiver starts a new timeline.
type BreakError struct {
	At     Position
	Reason string
}

func (e *BreakError) Error() string {
	return fmt.Sprintf("binlog=%s offset=%d: cannot continue the archive: %s", e.At.File, e.At.Offset, e.Reason)
}

// Streamer reads the primary's binlog from a position, forever, reconnecting
// by itself with capped backoff, and hands every event to a Handler.
type Streamer struct {
	Config Config
	Flavor Flavor
	Log    zerolog.Logger
	// MaxBackoff caps the wait between reconnect attempts.
	MaxBackoff time.Duration
	// OnConnect is called (if set) each time the stream is (re)established.
	OnConnect func(connected bool)
	// ExpectServerID, when set, is the server_id of the server whose
	// binlog is archived: a format description of another server's (a
	// VIP or DNS moved to another server between two connections) breaks
	// the stream instead of splicing that server's file in.
	ExpectServerID uint32
	// SemiSync, if set, registers as a semi-synchronous replica whose
	// acknowledgements the caller sends.
	SemiSync *SemiSync
	// OnDump, if set, hears the thread id the server gave each dump
	// connection, once the dump has started (see EndDump).
	OnDump func(threadID uint32)
}

// Stream archives from pos until ctx is cancelled (then it returns nil), the
// handler fails, or the archive cannot continue (a *BreakError). expectFDE,
// when resuming inside a file, is the archived format description event of
// that file: the primary's copy must match it, or the file is not the one
// archived. Transient failures (primary down, network cut) are retried.
func (s *Streamer) Stream(ctx context.Context, pos Position, expectFDE []byte, h Handler) error {
	st := &streamState{pos: pos, expectFDE: expectFDE, h: h, flavor: s.Flavor, serverID: s.ExpectServerID}
	b := retry.Backoff{Max: s.MaxBackoff}
	outage := &retry.Outage{Log: s.Log, What: "primary", DownMsg: "lost the primary; retrying with backoff (logged once per outage)", UpMsg: "-"}
	var down time.Time // when the current outage began; zero while healthy
	for {
		received := st.received
		err := s.streamOnce(ctx, st, &down)
		if ctx.Err() != nil {
			return nil
		}
		var be *BreakError
		if errors.As(err, &be) || IsConfigError(err) || errors.Is(err, errHandler) {
			return unwrapHandler(err)
		}
		if st.received != received {
			b.Reset()
		}
		if down.IsZero() {
			down = time.Now()
			outage.OK() // a new outage: the last one ended when events flowed
			if s.OnConnect != nil {
				s.OnConnect(false)
			}
		}
		outage.Failed(err, func(e *zerolog.Event) *zerolog.Event {
			return e.Str("source", s.Config.String()).Stringer("position", st.pos)
		})
		if b.Wait(ctx) != nil {
			return nil
		}
	}
}

var errHandler = errors.New("handler failed")

type handlerError struct{ err error }

func (e *handlerError) Error() string { return e.err.Error() }
func (e *handlerError) Unwrap() []error {
	return []error{errHandler, e.err}
}

func unwrapHandler(err error) error {
	var he *handlerError
	if errors.As(err, &he) {
		return he.err
	}
	return err
}

// streamOnce runs one connection until it fails.
func (s *Streamer) streamOnce(ctx context.Context, st *streamState, down *time.Time) error {
	cfg := s.Config
	dumpFlags := uint16(0)
	if s.Flavor == FlavorMariaDB {
		// Without this flag MariaDB leaves ANNOTATE_ROWS events out of the
		// dump, and the archived file would not match the primary's.
		dumpFlags |= gomysql.BINLOG_SEND_ANNOTATE_ROWS_EVENT
	}
	tlsConfig, err := cfg.TLSConfig(ctx)
	if err != nil {
		return err
	}
	syncerCfg := gomysql.BinlogSyncerConfig{
		TLSConfig:       tlsConfig,
		ServerID:        cfg.ServerID,
		Flavor:          string(s.Flavor),
		Host:            cfg.Host,
		Port:            cfg.Port,
		User:            cfg.User,
		Password:        cfg.Password,
		RawModeEnabled:  true,
		HeartbeatPeriod: cfg.HeartbeatPeriod,
		ReadTimeout:     cfg.ReadTimeout,
		// binarc owns the reconnect: go-mysql's own would resume from its
		// idea of the position, and in GTID mode resend events.
		DisableRetrySync: true,
		VerifyChecksum:   true,
		DumpCommandFlag:  dumpFlags,
		Logger:           slog.New(slog.NewTextHandler(io.Discard, nil)),
		// A synchronous handler keeps memory bounded by bytes: go-mysql's
		// channel is bounded by event count, and events reach 1 GiB.
		SynchronousEventHandler: st,
	}
	s.SemiSync.configure(&syncerCfg)
	syncer := gomysql.NewBinlogSyncer(syncerCfg)
	defer syncer.Close()

	st.connected = false
	st.connEvents = 0
	start := st.pos
	if start.Offset < MagicLen {
		start.Offset = MagicLen
	}
	if start.Offset > 0xffffffff {
		return &ConfigError{
			Problem: fmt.Sprintf("binlog=%s offset=%d: the replication protocol cannot resume past 4 GiB in a file", start.File, start.Offset),
			Hint:    "start a new timeline from the next file with --start-at NEXT_FILE",
		}
	}
	st.onFirstEvent = func() {
		if !down.IsZero() {
			s.Log.Info().Dur("outage", time.Since(*down).Round(time.Millisecond)).Stringer("position", st.pos).
				Msg("reconnected to the primary")
			*down = time.Time{}
		} else {
			s.Log.Info().Str("source", cfg.String()).Stringer("position", st.pos).Msg("streaming from the primary")
		}
		if s.OnConnect != nil {
			s.OnConnect(true)
		}
	}
	streamer, err := syncer.StartSync(mysql.Position{Name: start.File, Pos: uint32(start.Offset)})
	if err != nil {
		return cfg.classify(cfg.classifyTLS(err))
	}
	if id := syncer.LastConnectionID(); id != 0 && s.OnDump != nil {
		s.OnDump(id)
	}
	// With a synchronous handler the streamer only ever carries the error
	// that ended the connection.
	_, err = streamer.GetEvent(ctx)
	if err == nil {
		err = errors.New("stream ended without an error")
	}
	if st.err != nil {
		return st.err
	}
	return st.classifyStreamError(cfg, err)
}

// classifyStreamError recognises the primary's refusals that mean the
// archive cannot continue from the asked position.
func (st *streamState) classifyStreamError(cfg Config, err error) error {
	var me *mysql.MyError
	if errors.As(err, &me) && me.Code == erMasterFatalReading {
		msg := strings.ToLower(me.Message)
		switch {
		case strings.Contains(msg, "could not find first log file"),
			strings.Contains(msg, "could not open log file"),
			strings.Contains(msg, "binary log is not open"):
			return &BreakError{At: st.pos, Reason: "the primary no longer has this binlog file (purged before it was archived): " + me.Message}
		case strings.Contains(msg, "position") && (strings.Contains(msg, "file size") || strings.Contains(msg, "impossible")):
			return &BreakError{At: st.pos, Reason: "the primary's file is shorter than the archive (recreated or reset): " + me.Message}
		case strings.Contains(msg, "same server_uuid") || strings.Contains(msg, "same server_id"):
			return &ConfigError{Problem: "another replica registered with binarc's server id: " + me.Message, Hint: "give binarc a unique --server-id"}
		}
	}
	return cfg.classify(err)
}

// streamState tracks the position across connections and turns go-mysql's
// events into Handler calls. It is the synchronous event handler.
type streamState struct {
	pos          Position
	expectFDE    []byte // archived FDE of pos.File, to check the primary's against
	h            Handler
	flavor       Flavor
	connected    bool
	connEvents   int    // events received on the current connection
	received     uint64 // events received, across connections
	err          error  // the error HandleEvent failed with
	serverID     uint32 // expected server_id of every format description (0: any)
	onFirstEvent func()
}

// HandleEvent implements go-mysql's EventHandler.
func (st *streamState) HandleEvent(e *gomysql.BinlogEvent) error {
	if err := st.handle(e); err != nil {
		st.err = err
		return err
	}
	return nil
}

func (st *streamState) handle(e *gomysql.BinlogEvent) error {
	h := e.Header
	raw := e.RawData
	if !st.connected {
		st.connected = true
		if st.onFirstEvent != nil {
			st.onFirstEvent()
		}
	}
	st.received++
	st.connEvents++
	artificial := h.Flags&gomysql.LOG_EVENT_ARTIFICIAL_F != 0

	switch h.EventType {
	case gomysql.HEARTBEAT_EVENT, gomysql.HEARTBEAT_LOG_EVENT_V2:
		st.h.Heartbeat(Position{File: st.pos.File, Offset: uint64(h.LogPos)})
		return nil

	case gomysql.ROTATE_EVENT:
		rot, ok := e.Event.(*gomysql.RotateEvent)
		if !ok {
			return fmt.Errorf("binlog=%s offset=%d: rotate event not decoded", st.pos.File, st.pos.Offset)
		}
		next := string(rot.NextLogName)
		if artificial || h.LogPos == 0 {
			return st.fakeRotate(next, rot.Position)
		}
		// A real rotate is the last event of the file: archive it, then
		// follow it to the next file.
		if err := st.emit(h, raw); err != nil {
			return err
		}
		return st.leaveFile(next)

	case gomysql.FORMAT_DESCRIPTION_EVENT:
		if st.serverID != 0 && h.ServerID != st.serverID {
			return &BreakError{At: st.pos, Reason: fmt.Sprintf("another server answers at this address: its binlog %s was written by server_id %d, the archived one by %d (a failover behind a VIP or DNS name)", st.pos.File, h.ServerID, st.serverID)}
		}
		if h.LogPos == 0 {
			// Resent on every connection that starts inside a file, with
			// log_pos and the created timestamp zeroed: not part of the
			// file. It is still the file's FDE, so it tells whether the
			// primary's file is the one archived.
			return st.checkFDE(raw)
		}
		if st.pos.Offset > MagicLen {
			return fmt.Errorf("binlog=%s offset=%d: format description event in the middle of the file", st.pos.File, st.pos.Offset)
		}
		st.expectFDE = append(st.expectFDE[:0], raw...)
	}

	if h.LogPos == 0 {
		if artificial || st.flavor != FlavorMariaDB {
			return nil // an artificial event (fake GTID list, ...): never in the file
		}
		// MariaDB 11.4+ may send real events with log_pos 0 (go-mysql's
		// FillZeroLogPos): they follow on at the current offset.
	}
	return st.emit(h, raw)
}

// emit hands on one real event at the current position.
func (st *streamState) emit(h *gomysql.EventHeader, raw []byte) error {
	if st.pos.Offset < MagicLen {
		st.pos.Offset = MagicLen
	}
	start := st.pos.Offset
	end := start + uint64(len(raw))
	// log_pos is 32 bits and wraps in files past 4 GiB; compare modulo 2^32.
	if h.LogPos != 0 && h.LogPos != uint32(end) {
		return fmt.Errorf("binlog=%s offset=%d: event %s ends at log_pos %d, expected %d: the stream skipped or repeated bytes",
			st.pos.File, start, h.EventType, h.LogPos, uint32(end))
	}
	ev := Event{
		File:      st.pos.File,
		Start:     start,
		End:       end,
		Type:      h.EventType,
		Timestamp: h.Timestamp,
		Raw:       raw,
	}
	if h.EventType == gomysql.MARIADB_GTID_EVENT || h.EventType == gomysql.GTID_EVENT {
		ev.GTID = ParseGTID(raw)
	}
	if err := st.h.Event(ev); err != nil {
		return &handlerError{err}
	}
	st.pos.Offset = end
	return nil
}

// fakeRotate handles the ROTATE the primary sends at the start of every
// connection (naming the file and offset it starts at) and when it moves on
// to another file after one that did not end with a real rotate (a file
// closed by a restart ends with a STOP event instead).
func (st *streamState) fakeRotate(next string, pos uint64) error {
	if next == st.pos.File {
		want := max(st.pos.Offset, MagicLen)
		if pos != want {
			return fmt.Errorf("binlog=%s: primary starts the stream at offset %d, asked for %d", next, pos, want)
		}
		return nil
	}
	if st.pos.Offset <= MagicLen && st.connEvents == 1 {
		// The very first event of a stream that asked for a file's start
		// names another file: the asked file is gone.
		return &BreakError{At: st.pos, Reason: fmt.Sprintf("the primary continued at %s instead", next)}
	}
	if pos != MagicLen {
		return fmt.Errorf("binlog=%s: primary moved to %s at offset %d, expected the file start", st.pos.File, next, pos)
	}
	return st.leaveFile(next)
}

func (st *streamState) leaveFile(next string) error {
	if !binlogAfter(next, st.pos.File) {
		return &BreakError{At: st.pos, Reason: fmt.Sprintf("the primary rotated from %s back to %s", st.pos.File, next)}
	}
	if err := st.h.FileDone(st.pos.File, next); err != nil {
		return &handlerError{err}
	}
	st.pos = Position{File: next, Offset: MagicLen}
	st.expectFDE = nil
	return nil
}

// checkFDE compares the primary's format description of the current file
// with the archived one: same creation timestamp, server id and version
// means the same file.
func (st *streamState) checkFDE(raw []byte) error {
	if len(st.expectFDE) == 0 {
		return nil
	}
	// Header timestamp (0:4), type (4), server id (5:9); body: binlog
	// version (2) and server version (50).
	const idEnd = HeaderLen + 2 + 50
	a, b := raw, st.expectFDE
	if len(a) < idEnd || len(b) < idEnd || !bytes.Equal(a[:9], b[:9]) || !bytes.Equal(a[HeaderLen:idEnd], b[HeaderLen:idEnd]) {
		return &BreakError{At: st.pos, Reason: "the primary's file under this name is not the archived one (different format description: the binlog was reset or the server replaced)"}
	}
	return nil
}

// binlogAfter tells whether binlog file name a comes after b: same base,
// larger sequence number (numeric, so .999999 < .1000000).
func binlogAfter(a, b string) bool {
	ab, an, aok := SplitBinlogName(a)
	bb, bn, bok := SplitBinlogName(b)
	if !aok || !bok || ab != bb {
		return a > b
	}
	return an > bn
}

// SplitBinlogName splits "mysql-bin.000042" into "mysql-bin" and 42.
func SplitBinlogName(name string) (base string, seq uint64, ok bool) {
	i := strings.LastIndexByte(name, '.')
	if i <= 0 || i == len(name)-1 {
		return "", 0, false
	}
	for _, c := range name[i+1:] {
		if c < '0' || c > '9' {
			return "", 0, false
		}
		seq = seq*10 + uint64(c-'0')
	}
	return name[:i], seq, true
}

// CompareBinlogNames orders binlog file names by sequence number.
func CompareBinlogNames(a, b string) int {
	switch {
	case a == b:
		return 0
	case binlogAfter(a, b):
		return 1
	default:
		return -1
	}
}
