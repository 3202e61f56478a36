package chaos

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"github.com/binarc/binarc/internal/testenv"
)

// The accounts the campaign creates on A before B and R copy its binlog.
const (
	binarcUser  = "binarc"
	binarcPass  = "chaos-Pa55-binarc"
	replUser    = "chaosrepl"
	replPass    = "chaos-Pa55-repl"
	snapUser    = "chaossnap"
	writerUser  = "writer"
	writerPass  = "chaos-Pa55-writer"
	hotRows     = 5
	caughtUpMax = 90 * time.Second
)

// node is one MariaDB of the topology with the proxy binarc reaches it by.
type node struct {
	name  string // "A", "B", "R"
	db    *testenv.MariaDB
	proxy *testenv.Proxy
	up    bool  // running (not killed or stopped by a fault)
	dead  bool  // lost for good (the loser of a hard flip)
	from  *node // the server it replicates from
	// partial: its binlog lacks the start of the history (purged, or the
	// server was rebuilt from the archive): a new server cannot copy it.
	partial bool
	// killedAt is when a hard failover killed it (the fault that lost
	// what only it had).
	killedAt time.Time
}

// cluster is the topology: the pair A⇄B, the replica R, the S3 server and
// its proxy.
type cluster struct {
	dir   string
	s3    *testenv.S3Server
	store *testenv.Proxy // binarc's way to the S3 server

	mu       sync.Mutex
	a, b, r  *node
	writable *node
	// semiSync: the writable master waits for binarc's acknowledgement.
	semiSync bool
	// binlogFormat, when set, is every server's binlog_format (else ROW).
	binlogFormat string
	// restoreLatest runs binarc restore --to latest into a new data
	// directory (a rebuild when the writable master's binlog is partial).
	restoreLatest func(ctx context.Context, datadir string) error
}

// semiSyncTimeout is the writable master's rpl_semi_sync_master_timeout
// under --semi-sync: MariaDB's default. A commit that waits longer for
// binarc is acknowledged without it (a fallback, which the sampler
// records). It cannot be infinite: binarc reads a new primary's binlog
// list (SHOW BINARY LOGS) before its dump, and MariaDB holds that behind
// a commit waiting for an acknowledgement, so at a failover the first
// commits on the new primary wait out the timeout.
const semiSyncTimeout = 10 * time.Second

// openWrites makes n the server that takes writes: read_only off and,
// under --semi-sync, the semi-synchronous primary on. Only the writable
// server has it on, as an operator enables it at a promotion: binarc is
// its one semi-synchronous replica.
func (c *cluster) openWrites(ctx context.Context, n *node) error {
	stmts := []string{"SET GLOBAL read_only = OFF"}
	if c.semiSync {
		stmts = append([]string{fmt.Sprintf("SET GLOBAL rpl_semi_sync_master_timeout = %d", semiSyncTimeout.Milliseconds()),
			"SET GLOBAL rpl_semi_sync_master_wait_point = AFTER_SYNC", "SET GLOBAL rpl_semi_sync_master_enabled = ON"}, stmts...)
	}
	return n.db.Exec(ctx, stmts...)
}

// closeWrites is openWrites undone: read_only on, semi-sync off.
func (c *cluster) closeWrites(ctx context.Context, n *node) error {
	stmts := []string{"SET GLOBAL read_only = ON"}
	if c.semiSync {
		stmts = append(stmts, "SET GLOBAL rpl_semi_sync_master_enabled = OFF")
	}
	return n.db.Exec(ctx, stmts...)
}

// serverOptions are the settings of every server of the pair and R (and
// of their rebuilds): a binlog that rotates often, log_slave_updates, no
// replication at start, read-only, and the campaign's binlog_format.
func (c *cluster) serverOptions(id uint32) testenv.MariaDBOptions {
	args := []string{"--log-slave-updates=ON", "--relay-log=relay-bin", "--skip-slave-start", "--read-only=ON"}
	if c.binlogFormat != "" {
		args = append(args, "--binlog-format="+c.binlogFormat)
	}
	return testenv.MariaDBOptions{ServerID: id, MaxBinlogSize: 128 << 10, ExtraArgs: args}
}

// startCluster launches every server and wires the replication.
func startCluster(ctx context.Context, dir string, seed uint64, semiSync bool, binlogFormat string) (*cluster, error) {
	c := &cluster{dir: dir, semiSync: semiSync, binlogFormat: binlogFormat}
	var err error
	if err = mkdirs(filepath.Join(dir, "s3")); err != nil {
		return nil, err
	}
	if c.s3, err = testenv.LaunchS3(ctx, filepath.Join(dir, "s3")); err != nil {
		return nil, err
	}
	if c.store, err = testenv.StartProxy(c.s3.Endpoint[len("http://"):], seed); err != nil {
		return c, err
	}
	if c.a, err = c.launch(ctx, "A", 1, seed+1); err != nil {
		return c, err
	}
	if err := c.setupPrimary(ctx); err != nil {
		return c, err
	}
	if c.b, err = c.launch(ctx, "B", 2, seed+2); err != nil {
		return c, err
	}
	if c.r, err = c.launch(ctx, "R", 3, seed+3); err != nil {
		return c, err
	}
	if err := c.replicate(ctx, c.b, c.a, true); err != nil {
		return c, err
	}
	if err := c.b.db.WaitCaughtUp(ctx, c.a.db, caughtUpMax); err != nil {
		return c, err
	}
	if err := c.replicateBack(ctx, c.a, c.b); err != nil {
		return c, err
	}
	if err := c.replicate(ctx, c.r, c.b, true); err != nil {
		return c, err
	}
	c.writable = c.a
	return c, c.openWrites(ctx, c.a)
}

// launch starts one server (read-only, with a binlog that rotates often and
// log_slave_updates, as both sides of a master/master pair have) and its
// proxy.
func (c *cluster) launch(ctx context.Context, name string, id uint32, seed uint64) (*node, error) {
	db, err := testenv.LaunchMariaDB(ctx, filepath.Join(c.dir, name), c.serverOptions(id))
	if err != nil {
		return nil, fmt.Errorf("server %s: %w", name, err)
	}
	p, err := testenv.StartProxy(db.Addr(), seed)
	if err != nil {
		db.Close()
		return nil, err
	}
	return &node{name: name, db: db, proxy: p, up: true}, nil
}

// setupPrimary creates the accounts and the tables on A.
func (c *cluster) setupPrimary(ctx context.Context) error {
	if err := c.a.db.CreateReplicationUser(ctx, binarcUser, binarcPass); err != nil {
		return err
	}
	stmts := []string{
		"CREATE USER " + replUser + "@'127.0.0.1' IDENTIFIED BY '" + replPass + "'",
		"GRANT REPLICATION SLAVE ON *.* TO " + replUser + "@'127.0.0.1'",
		"CREATE USER " + snapUser + "@'127.0.0.1' IDENTIFIED BY '" + binarcPass + "'",
		"GRANT RELOAD, PROCESS, BINLOG MONITOR, SLAVE MONITOR, REPLICATION SLAVE ADMIN ON *.* TO " + snapUser + "@'127.0.0.1'",
		// No READ_ONLY ADMIN: read_only stops the writers on the passive side.
		"CREATE USER " + writerUser + "@'127.0.0.1' IDENTIFIED BY '" + writerPass + "'",
		"GRANT ALL ON app.* TO " + writerUser + "@'127.0.0.1'",
		"CREATE DATABASE app",
		"CREATE TABLE app.rows (id BIGINT PRIMARY KEY, writer INT NOT NULL, pad VARCHAR(200) NOT NULL)",
		"CREATE TABLE app.hot (k INT PRIMARY KEY, v BIGINT NOT NULL)",
	}
	for k := 1; k <= hotRows; k++ {
		stmts = append(stmts, fmt.Sprintf("INSERT INTO app.hot VALUES (%d, 0)", k))
	}
	return c.a.db.Exec(ctx, stmts...)
}

// replicate makes replica replicate from primary by GTID; fresh means from
// the primary's first binlog (gtid_slave_pos emptied).
func (c *cluster) replicate(ctx context.Context, replica, primary *node, fresh bool) error {
	stmts := []string{"STOP SLAVE"}
	if fresh {
		stmts = append(stmts, "SET GLOBAL gtid_slave_pos = ''")
	}
	stmts = append(stmts, fmt.Sprintf("CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=%d, MASTER_USER='%s', MASTER_PASSWORD='%s', MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1",
		primary.db.Port, replUser, replPass), "START SLAVE")
	if err := replica.db.Exec(ctx, stmts...); err != nil {
		return err
	}
	replica.from = primary
	return replica.db.WaitReplicating(ctx, caughtUpMax)
}

// replicateBack closes a master/master pair: primary, which replica
// already follows, replicates from replica in turn, starting from its own
// binlog position (it has everything replica has).
func (c *cluster) replicateBack(ctx context.Context, primary, replica *node) error {
	// gtid_slave_pos cannot be set while a replication thread runs (1198):
	// a primary left half-replicating by an earlier failure has one.
	if err := primary.db.Exec(ctx, "STOP SLAVE", "SET GLOBAL gtid_slave_pos = @@GLOBAL.gtid_binlog_pos"); err != nil {
		return err
	}
	return c.replicate(ctx, primary, replica, false)
}

// sourceURL is binarc's --source: the three servers through their proxies.
func (c *cluster) sourceURL() string {
	return "mysql://" + binarcUser + "@" + c.a.proxy.Addr() + "," + c.b.proxy.Addr() + "," + c.r.proxy.Addr()
}

// Writable is the server the writers write to.
func (c *cluster) Writable() *node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.writable
}

// passive is the other side of the pair, nil when it is lost for good.
func (c *cluster) passive() *node {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.writable == c.a {
		if c.b.dead {
			return nil
		}
		return c.b
	}
	if c.a.dead {
		return nil
	}
	return c.a
}

// lost is the side of the pair lost at a hard flip, if any.
func (c *cluster) lost() *node {
	for _, n := range []*node{c.a, c.b} {
		if n.dead {
			return n
		}
	}
	return nil
}

// restart brings a killed or stopped server back: its replication threads
// started again (--skip-slave-start) and, on the writable one, writes on.
func (c *cluster) restart(ctx context.Context, n *node) error {
	if err := n.db.Start(ctx); err != nil {
		return err
	}
	n.up = true
	if n.from != nil && !n.from.dead {
		if err := n.db.Exec(ctx, "START SLAVE"); err != nil {
			return err
		}
	}
	if c.Writable() == n {
		return c.openWrites(ctx, n)
	}
	return nil
}

// flipClean moves writes to the passive side once it has everything.
func (c *cluster) flipClean(ctx context.Context) (string, error) {
	from, to := c.Writable(), c.passive()
	if to == nil {
		return "", errors.New("no passive master (lost at a hard flip)")
	}
	if !from.up || !to.up {
		return "", errors.New("a master is down")
	}
	if err := from.db.Exec(ctx, "SET GLOBAL read_only = ON"); err != nil {
		return "", err
	}
	if err := to.db.WaitCaughtUp(ctx, from.db, caughtUpMax); err != nil {
		_ = from.db.Exec(ctx, "SET GLOBAL read_only = OFF")
		return "", err
	}
	if err := c.closeWrites(ctx, from); err != nil {
		return "", err
	}
	if err := c.openWrites(ctx, to); err != nil {
		return "", err
	}
	c.setWritable(to)
	return from.name + " → " + to.name, nil
}

// flipHard kills the writable master mid-load and makes the passive side
// writable with whatever it had received: the rest is lost. The loser stays
// down (rejoining it would need a rebuild) and R is repointed if it
// followed the loser.
//
// The passive side's IO thread is stopped for lag first, so the writable
// master acknowledges transactions it never receives: losses, for the
// checker to find in the join's lost range and nowhere on the history.
func (c *cluster) flipHard(ctx context.Context, lag time.Duration, pause sync.Locker) (string, error) {
	from, to := c.Writable(), c.passive()
	if to == nil || !to.up {
		return "", errors.New("no passive master to promote")
	}
	if err := killLagging(ctx, from, to, lag); err != nil {
		return "", err
	}
	if err := c.promote(ctx, to); err != nil {
		return "", err
	}
	detail := from.name + " killed, " + to.name + " promoted"
	if c.r.from == from {
		// R may hold transactions the promoted side never got; then it
		// cannot follow it, and is rebuilt, as a DBA would (the flip
		// itself happened: its losses are this fault's).
		if err := c.replicate(ctx, c.r, to, false); err != nil {
			detail += "; R cannot follow " + to.name + " (" + firstLine(err.Error()) + ")"
			how, err := c.rebuildReplica(ctx, c.r, pause)
			if err != nil {
				return detail + "; rebuilding R: " + firstLine(err.Error()), nil
			}
			detail += ": R rebuilt from " + how
		}
	}
	return detail, nil
}

// killLagging stops the passive side's IO thread, lets the writable
// master go on alone for lag (it acknowledges what the passive side never
// gets) and SIGKILLs it: it is lost for good.
func killLagging(ctx context.Context, from, passive *node, lag time.Duration) error {
	if err := passive.db.Exec(ctx, "STOP SLAVE IO_THREAD"); err != nil {
		return err
	}
	time.Sleep(lag)
	if err := from.db.Kill(); err != nil {
		return err
	}
	from.up, from.dead, from.killedAt = false, true, time.Now()
	return nil
}

// promoteReplica is the global master's failure in the operators' notes:
// the writable master is killed mid-load and the replica R, once it has
// applied what it received, becomes the writable master; the surviving
// side of the pair replicates from it (both ways: R takes the lost side's
// place in the pair). As in flipHard, the passive side's IO thread is
// stopped for lag first, so some acknowledged transactions are lost. The
// lost server is then rebuilt as the new replica (R's place).
func (c *cluster) promoteReplica(ctx context.Context, lag time.Duration, pause sync.Locker) (string, error) {
	from, pass, r := c.Writable(), c.passive(), c.r
	if pass == nil || !pass.up || !r.up || r.dead || r.from == nil {
		return "", errors.New("no passive master and replica to fail over with")
	}
	if err := killLagging(ctx, from, pass, lag); err != nil {
		return "", err
	}
	// R has what its source sent: a replica of the passive side catches up
	// with it first (R then has all the passive side has); a replica of
	// the killed master has at least what the passive side has.
	if r.from == pass {
		if err := r.db.WaitCaughtUp(ctx, pass.db, caughtUpMax); err != nil {
			return "", fmt.Errorf("the replica R catching up with %s: %w", pass.name, err)
		}
	} else if err := r.db.WaitApplied(ctx, caughtUpMax); err != nil {
		return "", fmt.Errorf("the replica R applying what it received: %w", err)
	}
	if err := c.promote(ctx, r); err != nil {
		return "", err
	}
	if err := c.replicate(ctx, pass, r, false); err != nil {
		return "", fmt.Errorf("%s following the promoted R: %w", pass.name, err)
	}
	// pass must hold everything R has written before R asks it for R's
	// own position (1236 otherwise: the same run's minute 15): the writers
	// are held while pass catches up and R starts replicating from it.
	pause.Lock()
	err := pass.db.WaitCaughtUp(ctx, r.db, caughtUpMax)
	if err == nil {
		err = c.replicateBack(ctx, r, pass)
	}
	pause.Unlock()
	if err != nil {
		return "", err
	}
	c.mu.Lock()
	if c.a == from {
		c.a, c.r = r, from
	} else {
		c.b, c.r = r, from
	}
	c.mu.Unlock()
	detail := from.name + " killed, R promoted, " + pass.name + " follows it"
	how, err := c.rebuildReplica(ctx, from, pause)
	if err != nil {
		return detail + "; the new replica: " + firstLine(err.Error()), nil
	}
	return detail + "; " + from.name + " rebuilt as the replica from " + how, nil
}

// promote makes n, whose master was killed, the writable master: its
// replication stopped, writes opened (openWrites).
func (c *cluster) promote(ctx context.Context, n *node) error {
	if err := n.db.Exec(ctx, "STOP SLAVE"); err != nil {
		return err
	}
	if err := c.openWrites(ctx, n); err != nil {
		return err
	}
	n.from = nil
	c.setWritable(n)
	return nil
}

func (c *cluster) setWritable(n *node) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writable = n
}

// close kills everything.
func (c *cluster) close() {
	for _, n := range []*node{c.a, c.b, c.r} {
		if n != nil {
			n.proxy.Close()
			n.db.Close()
		}
	}
	if c.store != nil {
		c.store.Close()
	}
	if c.s3 != nil {
		c.s3.Close()
	}
}

// binarcEnv is the environment of binarc runs: the S3 server through its
// proxy (stream, snapshot) or directly (the checker's runs).
func (c *cluster) binarcEnv(proxied bool) []string {
	env := c.s3.Env()
	if proxied {
		for i, kv := range env {
			if len(kv) > len("AWS_ENDPOINT_URL_S3=") && kv[:len("AWS_ENDPOINT_URL_S3=")] == "AWS_ENDPOINT_URL_S3=" {
				env[i] = "AWS_ENDPOINT_URL_S3=" + c.store.URL()
			}
		}
	}
	return append(env, "BINARC_SOURCE_PASSWORD="+binarcPass, "BINARC_LOG_FORMAT=json")
}
