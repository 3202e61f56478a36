package replication

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	gomysql "github.com/go-mysql-org/go-mysql/replication"
)

// SemiSync makes a Streamer a semi-synchronous replica whose
// acknowledgements its owner sends (Ack) when it chooses: once the
// transaction is durable, not when it arrives.
//
// go-mysql negotiates semi-sync (SET @rpl_semi_sync_slave = 1) and strips
// the 2-byte header (0xef, ack flag) of each event packet, but answers an
// ack request itself, right after the event handler returned. SemiSync
// wraps the connection: go-mysql's acknowledgement packets never reach the
// primary, they become Requested calls, and Ack writes the real ones.
type SemiSync struct {
	// Requested is called for each transaction the primary waits on, with
	// the end position of its last event, after Handler.Event had that
	// event. It is called from the stream's goroutine and must be quick.
	Requested func(Position)
	// Dumping is called when a new connection has asked for the binlog:
	// acknowledgements can go out on it from then on.
	Dumping func()

	mu   sync.Mutex
	conn net.Conn // the connection dumping the binlog; nil when none
}

// ErrNotDumping means no connection to the primary is streaming now: the
// acknowledgement must wait for the next one.
var ErrNotDumping = errors.New("semi-sync: not connected to the primary")

// The first payload bytes of the packets SemiSync looks at.
const (
	comBinlogDump     = 0x12
	comBinlogDumpGTID = 0x1e
	ackHeaderLen      = 4 + 1 + 8 // packet header, 0xef, log position
)

// configure turns semi-sync on in a syncer's config. A nil SemiSync leaves
// it off.
func (s *SemiSync) configure(cfg *gomysql.BinlogSyncerConfig) {
	if s == nil {
		return
	}
	cfg.SemiSyncEnabled = true
	d := &net.Dialer{Timeout: 10 * time.Second}
	cfg.Dialer = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &ackConn{Conn: c, s: s}, nil
	}
}

// Ack tells the primary that everything up to pos (the end of a
// transaction's last event) is durable. The primary keeps the highest
// position acknowledged, so one Ack covers every earlier transaction.
func (s *SemiSync) Ack(pos Position) error {
	pkt := make([]byte, ackHeaderLen+len(pos.File))
	n := len(pkt) - 4
	pkt[0], pkt[1], pkt[2], pkt[3] = byte(n), byte(n>>8), byte(n>>16), 0 // sequence 0: a packet of its own
	pkt[4] = gomysql.SemiSyncIndicator
	binary.LittleEndian.PutUint64(pkt[5:], pos.Offset)
	copy(pkt[ackHeaderLen:], pos.File)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == nil {
		return ErrNotDumping
	}
	_ = s.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, err := s.conn.Write(pkt)
	_ = s.conn.SetWriteDeadline(time.Time{})
	if err != nil {
		return fmt.Errorf("semi-sync: send acknowledgement %s: %w", pos, err)
	}
	return nil
}

// ackConn is the syncer's connection. Once the dump command is written,
// go-mysql writes nothing but acknowledgements on it.
type ackConn struct {
	net.Conn
	s       *SemiSync
	dumping bool // the dump command went out (only the syncer's goroutine writes)
}

func (c *ackConn) Write(b []byte) (int, error) {
	if c.dumping && len(b) >= ackHeaderLen && b[3] == 0 && b[4] == gomysql.SemiSyncIndicator &&
		int(b[0])|int(b[1])<<8|int(b[2])<<16 == len(b)-4 {
		pos := Position{File: string(b[ackHeaderLen:]), Offset: binary.LittleEndian.Uint64(b[5:])}
		if c.s.Requested != nil {
			c.s.Requested(pos)
		}
		return len(b), nil
	}
	c.s.mu.Lock()
	n, err := c.Conn.Write(b)
	// Commands go out with sequence 0; the handshake response has 1.
	dump := err == nil && len(b) > 4 && b[3] == 0 && (b[4] == comBinlogDump || b[4] == comBinlogDumpGTID)
	if dump {
		c.dumping = true
		c.s.conn = c.Conn
	}
	c.s.mu.Unlock()
	if dump && c.s.Dumping != nil {
		c.s.Dumping()
	}
	return n, err
}

func (c *ackConn) Close() error {
	c.s.mu.Lock()
	if c.s.conn == c.Conn {
		c.s.conn = nil
	}
	c.s.mu.Unlock()
	return c.Conn.Close()
}

// SemiSyncState is the primary's side of semi-sync, as it reports it.
type SemiSyncState struct {
	Enabled bool // rpl_semi_sync_master_enabled (source, on MySQL 8.0.26+)
	// Active is Rpl_semi_sync_master_status: the primary waits for a
	// replica's acknowledgement at each commit. It turns off when no
	// acknowledgement came within rpl_semi_sync_master_timeout (the
	// primary fell back to asynchronous), and on again once a replica
	// caught up.
	Active bool
}

// SemiSyncMonitor reads the primary's semi-sync state over one connection
// it keeps open between calls.
type SemiSyncMonitor struct {
	Config Config
	conn   *client.Conn
}

// State queries the primary.
func (m *SemiSyncMonitor) State(ctx context.Context) (SemiSyncState, error) {
	if m.conn == nil {
		conn, err := m.Config.dial(ctx)
		if err != nil {
			return SemiSyncState{}, err
		}
		m.conn = conn
	}
	st, err := m.query()
	if err != nil {
		m.Close()
		return st, m.Config.classify(err)
	}
	return st, nil
}

func (m *SemiSyncMonitor) query() (SemiSyncState, error) {
	var st SemiSyncState
	r, err := m.conn.Execute("SHOW GLOBAL VARIABLES WHERE Variable_name IN ('rpl_semi_sync_master_enabled', 'rpl_semi_sync_source_enabled')")
	if err != nil {
		return st, err
	}
	for i := 0; i < r.RowNumber(); i++ {
		st.Enabled = st.Enabled || strings.EqualFold(text(r, i, 1), "ON")
	}
	r.Close()
	r, err = m.conn.Execute("SHOW GLOBAL STATUS WHERE Variable_name IN ('Rpl_semi_sync_master_status', 'Rpl_semi_sync_source_status')")
	if err != nil {
		return st, err
	}
	for i := 0; i < r.RowNumber(); i++ {
		st.Active = st.Active || strings.EqualFold(text(r, i, 1), "ON")
	}
	r.Close()
	return st, nil
}

// Close ends the monitor's connection, if open.
func (m *SemiSyncMonitor) Close() {
	if m.conn != nil {
		quit(m.conn)
		m.conn = nil
	}
}
