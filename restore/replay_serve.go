package restore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/replication"
	"github.com/binarc/binarc/serve"
	"github.com/go-mysql-org/go-mysql/client"
	"github.com/rs/zerolog"
)

// Replay methods: how the binlog reaches the server.
const (
	// ReplayViaServe: the server replicates the binlog from a private
	// binarc serve, with its own (parallel) applier: no decode to SQL text
	// and no re-parse, so many times faster than a client session.
	ReplayViaServe = "serve"
	// ReplayViaClient: mariadb-binlog | mariadb, one client session.
	ReplayViaClient = "client"
)

// serveConnection is the replication connection the restoring server
// uses: a named one (multi-source), so the default connection, which holds
// the snapshot source's own replication settings, stays as it was.
const serveConnection = "binarc_restore"

// ProgressInfo is how far a replay has got.
type ProgressInfo struct {
	Bytes, TotalBytes uint64 // binlog bytes applied, of the plan's
	Transactions      uint64 // transactions applied (serve only)
	TotalTransactions uint64 // 0 when not known
}

// replayOptions tune a replay through serve.
type replayOptions struct {
	// Threads is slave_parallel_threads: 0 applies serially.
	Threads  int
	Log      zerolog.Logger
	Progress func(ProgressInfo)
}

// replayThroughServe applies the plan's binlog with the server's own
// replication applier: a private serve on loopback, with a random password,
// streams the rebuilt files from p.From to p.Stop (leaving out the skipped
// transactions); the server replicates through a named connection, is
// checked to have applied exactly up to the end of the stream, and the
// connection is removed (RESET SLAVE ALL), so nothing points at binarc.
func replayThroughServe(ctx context.Context, p *Plan, c ReplayClient, o replayOptions) error {
	if len(p.Ranges) == 0 {
		return nil
	}
	pw := make([]byte, 18)
	if _, err := rand.Read(pw); err != nil {
		return err
	}
	password := hex.EncodeToString(pw)
	// The files the ranges replay, all in one timeline's directory
	// (servable): the plan may have fetched others to find its way.
	var names []string
	for _, r := range p.Ranges {
		if len(names) == 0 || names[len(names)-1] != r.File {
			names = append(names, r.File)
		}
	}
	var skip []string
	for _, t := range p.Skipped {
		skip = append(skip, t.GTID)
	}
	conn, err := dialServer(c)
	if err != nil {
		return err
	}
	defer conn.Close()
	exec := func(q string) error {
		r, err := conn.Execute(q)
		if err != nil {
			return fmt.Errorf("%s: %w", redactPassword(q), err)
		}
		r.Close()
		return nil
	}
	sid, err := queryString(conn, "SELECT @@server_id")
	if err != nil {
		return err
	}
	id, _ := strconv.ParseUint(sid, 10, 32)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	var mu sync.Mutex
	var end *replication.Position
	srv, err := serve.New(serve.Config{
		Source: &serve.DirSource{Dir: filepath.Dir(p.Ranges[0].Path), Names: names},
		User:   "binarc_restore", Password: password,
		ServerID: uint32(id%0xfffffffe) + 1, // anything but the server's own
		Stop:     serve.Stop{Position: p.Stop}, Skip: skip,
		Log: o.Log.With().Str("component", "serve").Logger().Level(zerolog.WarnLevel),
		Reached: func(pos replication.Position) { // the end of the last transaction sent
			mu.Lock()
			end = &pos
			mu.Unlock()
		},
	})
	if err != nil {
		ln.Close()
		return err
	}
	sctx, stopServe := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(sctx, ln) }()
	defer func() {
		stopServe()
		<-served
	}()

	port := ln.Addr().(*net.TCPAddr).Port
	for _, q := range []string{
		// --skip-grant-tables keeps the restored users out of the way of
		// this session; loading the grant tables lets replicated CREATE
		// USER and GRANT statements run.
		"FLUSH PRIVILEGES",
		fmt.Sprintf("SET GLOBAL slave_parallel_threads = %d", o.Threads),
		fmt.Sprintf("CHANGE MASTER '%s' TO MASTER_HOST='127.0.0.1', MASTER_PORT=%d, MASTER_USER='binarc_restore', MASTER_PASSWORD='%s', MASTER_LOG_FILE='%s', MASTER_LOG_POS=%d, MASTER_USE_GTID=no, MASTER_CONNECT_RETRY=1",
			serveConnection, port, password, p.From.File, max(p.From.Offset, replication.MagicLen)),
		"SET SESSION default_master_connection = '" + serveConnection + "'",
		"SET GLOBAL slave_parallel_mode = 'optimistic'",
		"START SLAVE '" + serveConnection + "'",
	} {
		if err := exec(q); err != nil {
			return fmt.Errorf("point the server at binarc's replication stream: %w", err)
		}
	}
	var ends atomic.Pointer[txEnds]
	go func() {
		if te, err := countTransactions(sctx, p); err == nil {
			ends.Store(te)
		}
	}()
	started := time.Now()
	o.Log.Info().Int("parallel_threads", o.Threads).Uint64("bytes", p.ReplayBytes).Msg("replaying through the server's replication applier")
	waitErr := func() error {
		for {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case err := <-served:
				return fmt.Errorf("binarc's replication stream stopped: %v", err)
			case <-time.After(200 * time.Millisecond):
			}
			st, err := slaveStatus(conn)
			if err != nil {
				return err
			}
			if e := st["Last_SQL_Error"]; e != "" {
				return fmt.Errorf("the server failed to apply the binlog at %s:%s: %s", st["Relay_Master_Log_File"], st["Exec_Master_Log_Pos"], e)
			}
			if e := st["Last_IO_Error"]; e != "" && st["Slave_IO_Running"] != "Yes" && st["Slave_IO_Running"] != "Connecting" {
				return fmt.Errorf("the server's replication from binarc failed: %s", e)
			}
			if st["Slave_SQL_Running"] == "No" {
				return fmt.Errorf("the server's SQL thread stopped at %s:%s", st["Relay_Master_Log_File"], st["Exec_Master_Log_Pos"])
			}
			execPos, _ := strconv.ParseUint(st["Exec_Master_Log_Pos"], 10, 64)
			at := replication.Position{File: st["Relay_Master_Log_File"], Offset: execPos}
			mu.Lock()
			e := end
			mu.Unlock()
			if o.Progress != nil {
				pi := ProgressInfo{Bytes: appliedBytes(p, at), TotalBytes: p.ReplayBytes}
				if te := ends.Load(); te != nil {
					pi.Transactions, pi.TotalTransactions = te.applied(at)
				}
				o.Progress(pi)
			}
			// Positions only move forward, and nothing past the stop is
			// sent: at the last transaction's end, everything is applied.
			if e != nil && atOrAfter(at, *e) {
				return nil
			}
		}
	}()
	stopErr := exec("STOP SLAVE '" + serveConnection + "'")
	resetErr := exec("RESET SLAVE '" + serveConnection + "' ALL")
	if waitErr != nil {
		return waitErr
	}
	if o.Progress != nil {
		pi := ProgressInfo{Bytes: p.ReplayBytes, TotalBytes: p.ReplayBytes}
		if te := ends.Load(); te != nil {
			pi.Transactions, pi.TotalTransactions = te.before[len(te.before)-1], te.before[len(te.before)-1]
		}
		o.Progress(pi)
	}
	if err := errors.Join(stopErr, resetErr); err != nil {
		return fmt.Errorf("remove the replication connection to binarc: %w", err)
	}
	if p.Last != nil && p.Last.GTID != "" && strings.Count(p.Last.GTID, "-") == 2 {
		pos, err := queryString(conn, "SELECT @@GLOBAL.gtid_slave_pos")
		if err != nil {
			return err
		}
		if !containsGTID(pos, p.Last.GTID) {
			return fmt.Errorf("the server's gtid_slave_pos is %s after the replay; it should hold the last transaction applied, %s", pos, p.Last.GTID)
		}
	}
	o.Log.Info().Dur("took", time.Since(started).Round(time.Millisecond)).Stringer("stopped_at", p.Stop).Msg("replay applied and checked; the replication connection to binarc is removed")
	return nil
}

// appliedBytes is how many of the plan's bytes lie before at.
func appliedBytes(p *Plan, at replication.Position) uint64 {
	var n uint64
	for _, r := range p.Ranges {
		c := replication.CompareBinlogNames(r.File, at.File)
		switch {
		case c < 0:
			n += r.Stop - r.Start
		case c == 0 && at.Offset > r.Start:
			n += min(at.Offset, r.Stop) - r.Start
		}
	}
	return n
}

// atOrAfter tells whether a is at or after b; anything is after nothing.
func atOrAfter(a, b replication.Position) bool {
	if b.File == "" {
		return true
	}
	c := replication.CompareBinlogNames(a.File, b.File)
	return c > 0 || (c == 0 && a.Offset >= b.Offset)
}

func containsGTID(list, g string) bool {
	for _, s := range strings.Split(list, ",") {
		if strings.TrimSpace(s) == g {
			return true
		}
	}
	return false
}

// dialServer opens a SQL session to the server.
func dialServer(c ReplayClient) (*client.Conn, error) {
	addr := c.Socket
	if addr == "" {
		addr = net.JoinHostPort(c.Host, strconv.Itoa(int(c.Port)))
	}
	conn, err := client.Connect(addr, c.User, c.Password, "")
	if err != nil {
		return nil, fmt.Errorf("connect to the server at %s: %w", addr, err)
	}
	return conn, nil
}

func queryString(conn *client.Conn, q string) (string, error) {
	r, err := conn.Execute(q)
	if err != nil {
		return "", fmt.Errorf("%s: %w", q, err)
	}
	defer r.Close()
	if r.RowNumber() == 0 {
		return "", nil
	}
	s, err := r.GetString(0, 0)
	return strings.Clone(s), err
}

// slaveStatus is SHOW SLAVE STATUS of binarc's connection.
func slaveStatus(conn *client.Conn) (map[string]string, error) {
	r, err := conn.Execute("SHOW SLAVE '" + serveConnection + "' STATUS")
	if err != nil {
		return nil, fmt.Errorf("SHOW SLAVE STATUS: %w", err)
	}
	defer r.Close()
	st := map[string]string{}
	if r.RowNumber() == 0 {
		return st, nil
	}
	for i, f := range r.Fields {
		v, _ := r.GetString(0, i)
		st[string(f.Name)] = strings.Clone(v)
	}
	return st, nil
}

// redactPassword hides MASTER_PASSWORD in a statement for errors.
func redactPassword(q string) string {
	if i := strings.Index(q, "MASTER_PASSWORD='"); i >= 0 {
		if j := strings.Index(q[i+17:], "'"); j >= 0 {
			return q[:i+17] + "…" + q[i+17+j:]
		}
	}
	return q
}

// replayPlan applies the binlog into the temporary server the way the
// request asks: through serve (the default) or a client session.
func replayPlan(ctx context.Context, req RestoreRequest, p *Plan, c ReplayClient, tools ReplayTools) error {
	// The temporary server's directory is wiped if the restore fails, and
	// its clean shutdown makes everything durable: an fsync at every
	// replayed commit buys nothing and costs most of the replay's time on
	// small transactions (docs/BENCHMARKS.md).
	conn, err := dialServer(c)
	if err != nil {
		return err
	}
	_, err = conn.Execute("SET GLOBAL innodb_flush_log_at_trx_commit = 2")
	conn.Close()
	if err != nil {
		return fmt.Errorf("temporary server: SET GLOBAL innodb_flush_log_at_trx_commit = 2: %w", err)
	}
	if req.Replay == ReplayViaClient || !servable(req, p) {
		return Replay(ctx, p, c, tools, req.clientProgress())
	}
	return replayThroughServe(ctx, p, c, replayOptions{Threads: req.ReplayThreads, Log: req.Log, Progress: req.Progress})
}

// servable tells whether a plan can be replayed through serve: serve
// streams the files of one timeline, so a plan that crosses a timeline
// join (a failover, a flip) is replayed by the client instead, and says so.
func servable(req RestoreRequest, p *Plan) bool {
	for _, r := range p.Ranges {
		if r.Timeline != p.Ranges[0].Timeline {
			req.Log.Info().Str("from_timeline", p.Ranges[0].Timeline).Str("to_timeline", r.Timeline).
				Msg("the plan crosses a timeline join, which binarc serve does not stream: replaying with mariadb-binlog | mariadb")
			return false
		}
	}
	return true
}

// replayIntoTarget applies the binlog into the running --target server:
// through a client session unless serve was asked for. A server whose
// server_id is the archived primary's would skip every event through its
// applier, so that is refused.
func replayIntoTarget(ctx context.Context, req RestoreRequest, cat archive.Catalog, p *Plan, tools ReplayTools) error {
	if req.Replay != ReplayViaServe || !servable(req, p) {
		return Replay(ctx, p, *req.Server, tools, req.clientProgress())
	}
	conn, err := dialServer(*req.Server)
	if err != nil {
		return err
	}
	id, err := queryString(conn, "SELECT @@server_id")
	if err == nil {
		var ti *archive.TimelineInfo
		if ti, err = cat.ReadTimeline(ctx, p.Timeline); err == nil && id == strconv.FormatUint(uint64(ti.SourceServerID), 10) {
			err = fmt.Errorf("--replay serve: the target's server_id %s is the archived primary's, so its replication applier would skip every event; restart it with another --server-id, or use --replay client", id)
		}
	}
	conn.Close()
	if err != nil {
		return err
	}
	return replayThroughServe(ctx, p, *req.Server, replayOptions{Threads: req.ReplayThreads, Log: req.Log, Progress: req.Progress})
}

// clientProgress adapts Progress to the client replay's bytes.
func (req RestoreRequest) clientProgress() func(done, total uint64) {
	if req.Progress == nil {
		return nil
	}
	return func(done, total uint64) { req.Progress(ProgressInfo{Bytes: done, TotalBytes: total}) }
}

// txEnds are where the plan's transactions end, file by file in plan
// order, to count those applied at a position.
type txEnds struct {
	files  []string
	ends   [][]uint64
	before []uint64 // transactions in the earlier files
}

// countTransactions finds the ends of the transactions the plan applies
// (the skipped ones left out), for progress.
func countTransactions(ctx context.Context, p *Plan) (*txEnds, error) {
	te := &txEnds{}
	var total uint64
	for _, r := range p.Ranges {
		f, err := os.Open(r.Path)
		if err != nil {
			return nil, err
		}
		if len(te.files) == 0 || te.files[len(te.files)-1] != r.File {
			te.files, te.ends, te.before = append(te.files, r.File), append(te.ends, nil), append(te.before, total)
		}
		i := len(te.files) - 1
		err = scanFile(r.File, f, r.Start, func(t *Transaction) (bool, error) {
			if t.End > r.Stop {
				return false, nil
			}
			te.ends[i] = append(te.ends[i], t.End)
			total++
			return true, ctx.Err()
		})
		f.Close()
		if err != nil {
			return nil, err
		}
	}
	te.files, te.before = append(te.files, ""), append(te.before, total)
	return te, nil
}

// applied is how many transactions end at or before at, and the total.
func (te *txEnds) applied(at replication.Position) (uint64, uint64) {
	total := te.before[len(te.before)-1]
	for i, f := range te.files[:len(te.files)-1] {
		c := replication.CompareBinlogNames(f, at.File)
		if c > 0 {
			return te.before[i], total
		}
		if c == 0 {
			return te.before[i] + uint64(sort.Search(len(te.ends[i]), func(j int) bool { return te.ends[i][j] > at.Offset })), total
		}
	}
	return total, total
}
