package restore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/replication"
	"github.com/binarc/binarc/serve"
	"github.com/go-mysql-org/go-mysql/client"
	"github.com/go-mysql-org/go-mysql/mysql"
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
	// listen opens the private serve's listener (ReplayClient.listen).
	listen func() (net.Listener, error)
}

// replayThroughServe applies the plan's binlog with the server's own
// replication applier: a private serve on loopback, with a random password,
// streams the plan's ranges (leaving out the transactions cut out of them);
// the server replicates through a named connection, is checked to have
// applied exactly up to the end of the stream, and the connection is
// removed (RESET SLAVE ALL), so nothing points at binarc. A plan that
// crosses timeline joins is replayed one timeline after the other, each
// from its own serve: file names may repeat from one timeline to the next.
func replayThroughServe(ctx context.Context, p *Plan, c ReplayClient, o replayOptions) error {
	if len(p.Ranges) == 0 {
		return nil
	}
	o.listen = c.listen
	if o.listen == nil && c.NetnsOf != 0 {
		pid := c.NetnsOf
		o.listen = func() (net.Listener, error) { return listenInNetns(pid) }
	}
	conn, err := dialServer(c)
	if err != nil {
		return err
	}
	defer conn.Close()
	sid, err := queryString(conn, "SELECT @@server_id")
	if err != nil {
		return err
	}
	id, _ := strconv.ParseUint(sid, 10, 32)
	for _, q := range []string{
		// --skip-grant-tables keeps the restored users out of the way of
		// this session; loading the grant tables lets replicated CREATE
		// USER and GRANT statements run.
		"FLUSH PRIVILEGES",
		fmt.Sprintf("SET GLOBAL slave_parallel_threads = %d", o.Threads),
		"SET GLOBAL slave_parallel_mode = 'optimistic'",
	} {
		if err := execQuery(conn, q); err != nil {
			return fmt.Errorf("prepare the server to replicate from binarc: %w", err)
		}
	}
	groups := byTimeline(p.Ranges)
	started := time.Now()
	o.Log.Info().Int("parallel_threads", o.Threads).Uint64("bytes", p.ReplayBytes).Int("timelines", len(groups)).
		Msg("replaying through the server's replication applier")
	var doneBytes, doneTx uint64
	for i, g := range groups {
		if len(groups) > 1 {
			o.Log.Info().Str("timeline", g[0].Timeline).Str("from", fmt.Sprintf("%s:%d", g[0].File, g[0].Start)).
				Str("to", fmt.Sprintf("%s:%d", g[len(g)-1].File, g[len(g)-1].Stop)).Msgf("replaying timeline %d of %d", i+1, len(groups))
		}
		progress := func(at replication.Position, all bool) {
			if o.Progress == nil {
				return
			}
			pi := ProgressInfo{Bytes: doneBytes + appliedBytes(g, at), TotalBytes: p.ReplayBytes}
			if all {
				pi.Bytes = doneBytes + rangeBytes(g)
			}
			tl := g[0].Timeline
			n := p.tally.total(tl)
			if !all {
				n = p.tally.applied(tl, at)
			}
			pi.Transactions, pi.TotalTransactions = doneTx+n, p.tally.total("")
			o.Progress(pi)
		}
		if err := replayTimeline(ctx, conn, g, uint32(id), o, progress); err != nil {
			return err
		}
		doneBytes += rangeBytes(g)
		doneTx += p.tally.total(g[0].Timeline)
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

// sqlSession is the part of a SQL session the replay drives: a
// *client.Conn to the server, or a recording fake in tests.
type sqlSession interface {
	Execute(command string, args ...any) (*mysql.Result, error)
}

// replaySource is a private serve on loopback streaming one timeline's
// ranges to the server, with a random password.
type replaySource struct {
	port     int
	password string
	stop     context.CancelFunc
	// done is closed once Serve has returned, with its result in err:
	// a closed channel can be waited on by the replay and by close alike
	// (a channel holding Serve's one result is received once only).
	done chan struct{}
	err  error

	mu  sync.Mutex
	end *replication.Position // the end of the last transaction sent
}

// startReplaySource starts the private serve for ranges g.
func startReplaySource(ctx context.Context, g []ReplayRange, serverID uint32, o replayOptions) (*replaySource, error) {
	log := o.Log
	pw := make([]byte, 18)
	if _, err := rand.Read(pw); err != nil {
		return nil, err
	}
	ln, err := o.listenLoopback()
	if err != nil {
		return nil, err
	}
	rs := &replaySource{password: hex.EncodeToString(pw), port: ln.Addr().(*net.TCPAddr).Port, done: make(chan struct{})}
	last := g[len(g)-1]
	srv, err := serve.New(serve.Config{
		Source: newRangeSource(g),
		User:   "binarc_restore", Password: rs.password,
		ServerID: serverID%0xfffffffe + 1, // anything but the server's own
		Stop:     serve.Stop{Position: replication.Position{File: last.File, Offset: last.Stop}},
		Log:      log.With().Str("component", "serve").Logger().Level(zerolog.WarnLevel),
		Reached: func(pos replication.Position) {
			rs.mu.Lock()
			rs.end = &pos
			rs.mu.Unlock()
		},
	})
	if err != nil {
		ln.Close()
		return nil, err
	}
	sctx, stop := context.WithCancel(ctx)
	rs.stop = stop
	go func() {
		defer close(rs.done)
		rs.err = srv.Serve(sctx, ln)
	}()
	return rs, nil
}

// sentEnd is the end of the last transaction sent, nil before it is.
func (rs *replaySource) sentEnd() *replication.Position {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return rs.end
}

// close stops the serve and waits for it; it may be called after the
// serve stopped by itself.
func (rs *replaySource) close() {
	rs.stop()
	<-rs.done
}

// stopped is why the serve stopped before the replay was applied: the
// replay's cancellation when that stopped it, else Serve's error.
func (rs *replaySource) stopped(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if rs.err == nil {
		return errors.New("binarc's replication stream ended before the server applied it")
	}
	return fmt.Errorf("binarc's replication stream stopped: %w", rs.err)
}

// replayTimeline replays ranges of one timeline through a private serve:
// the server's connection is pointed at it, waited for until it has
// applied the last transaction sent, and removed.
func replayTimeline(ctx context.Context, conn sqlSession, g []ReplayRange, serverID uint32, o replayOptions, progress func(at replication.Position, all bool)) error {
	rs, err := startReplaySource(ctx, g, serverID, o)
	if err != nil {
		return err
	}
	defer rs.close()
	if err := pointAt(conn, g[0], rs); err != nil {
		return err
	}
	waitErr := waitApplied(ctx, conn, rs, progress)
	stopErr := execQuery(conn, "STOP SLAVE '"+serveConnection+"'")
	resetErr := execQuery(conn, "RESET SLAVE '"+serveConnection+"' ALL")
	if waitErr != nil {
		return waitErr
	}
	if err := errors.Join(stopErr, resetErr); err != nil {
		return fmt.Errorf("remove the replication connection to binarc: %w", err)
	}
	return nil
}

// pointAt creates the server's connection to rs and starts it. If a
// step after CHANGE MASTER fails (START SLAVE on a misconfigured server),
// the connection is removed again: left behind, it would point at a serve
// that is gone, with a password nobody knows.
func pointAt(conn sqlSession, first ReplayRange, rs *replaySource) error {
	changeMaster := fmt.Sprintf("CHANGE MASTER '%s' TO MASTER_HOST='127.0.0.1', MASTER_PORT=%d, MASTER_USER='binarc_restore', MASTER_PASSWORD='%s', MASTER_LOG_FILE='%s', MASTER_LOG_POS=%d, MASTER_USE_GTID=no, MASTER_CONNECT_RETRY=1",
		serveConnection, rs.port, rs.password, first.File, max(first.Start, replication.MagicLen))
	if err := execQuery(conn, changeMaster); err != nil {
		return fmt.Errorf("point the server at binarc's replication stream: %w", err)
	}
	for _, q := range []string{
		"SET SESSION default_master_connection = '" + serveConnection + "'",
		"START SLAVE '" + serveConnection + "'",
	} {
		if err := execQuery(conn, q); err != nil {
			err = fmt.Errorf("point the server at binarc's replication stream: %w", err)
			if rerr := execQuery(conn, "RESET SLAVE '"+serveConnection+"' ALL"); rerr != nil {
				err = errors.Join(err, fmt.Errorf("and remove the connection again: %w", rerr))
			}
			return err
		}
	}
	return nil
}

// waitApplied polls the server's connection to binarc until it has
// applied the last transaction rs sent, or fails.
func waitApplied(ctx context.Context, conn sqlSession, rs *replaySource, progress func(at replication.Position, all bool)) error {
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-rs.done:
			return rs.stopped(ctx)
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
		// Positions only move forward, and nothing past the stop is
		// sent: at the last transaction's end, everything is applied.
		e := rs.sentEnd()
		done := e != nil && atOrAfter(at, *e)
		progress(at, done)
		if done {
			return nil
		}
	}
}

func execQuery(conn sqlSession, q string) error {
	r, err := conn.Execute(q)
	if err != nil {
		return fmt.Errorf("%s: %w", redactPassword(q), err)
	}
	r.Close()
	return nil
}

// rangeBytes is how many bytes the ranges replay.
func rangeBytes(rs []ReplayRange) uint64 {
	var n uint64
	for _, r := range rs {
		n += r.Stop - r.Start
	}
	return n
}

// appliedBytes is how many bytes of the ranges (one timeline's) lie
// before at.
func appliedBytes(rs []ReplayRange, at replication.Position) uint64 {
	var n uint64
	for _, r := range rs {
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
func slaveStatus(conn sqlSession) (map[string]string, error) {
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
	if req.Replay == ReplayViaClient {
		return Replay(ctx, p, c, tools, req.clientProgress())
	}
	return replayThroughServe(ctx, p, c, replayOptions{Threads: req.ReplayThreads, Log: req.Log, Progress: req.Progress})
}

// replayIntoTarget applies the binlog into the running --target server:
// through a client session unless serve was asked for. A server whose
// server_id is the archived primary's would skip every event through its
// applier, so that is refused.
func replayIntoTarget(ctx context.Context, req RestoreRequest, cat archive.Catalog, p *Plan, tools ReplayTools) error {
	if req.Replay != ReplayViaServe {
		return Replay(ctx, p, *req.Server, tools, req.clientProgress())
	}
	conn, err := dialServer(*req.Server)
	if err != nil {
		return err
	}
	id, err := queryString(conn, "SELECT @@server_id")
	for _, st := range p.Steps {
		if err != nil {
			break
		}
		var ti *archive.TimelineInfo
		if ti, err = cat.ReadTimeline(ctx, st.Timeline); err == nil && id == strconv.FormatUint(uint64(ti.SourceServerID), 10) {
			err = fmt.Errorf("--replay serve: the target's server_id %s is that of the archived primary of timeline %s, so its replication applier would skip its events; restart it with another --server-id, or use --replay client", id, st.Timeline)
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
