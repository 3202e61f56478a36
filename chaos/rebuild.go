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

// rebuild replaces a side lost at a hard flip with a fresh server (a new
// datadir and server_id; its binlog file names start again at .000001 as
// a re-provisioned pod's do, behind the same address) that copies the
// writable master's whole binlog, or, when that binlog is partial
// (purged, or itself rebuilt from the archive), that binarc restores from
// the archive and that then replicates from the restored GTID on: the
// operators' way (README, "When a replica is lost"). Then the pair
// replicates both ways again. The proxy moves to the new server. It says
// how the server was rebuilt.
//
// pause holds the writers while the writable master starts replicating
// from the new server: it must not have written past what the new server
// has when it asks for its position (MariaDB refuses a replica ahead of
// its master, error 1236).
func (c *cluster) rebuild(ctx context.Context, n *node, pause sync.Locker) (string, error) {
	return c.rebuildServer(ctx, n, pause, true)
}

// rebuildReplica is rebuild without the way back: the new server only
// replicates from the writable master (R's slot after a promotion).
func (c *cluster) rebuildReplica(ctx context.Context, n *node, pause sync.Locker) (string, error) {
	return c.rebuildServer(ctx, n, pause, false)
}

// rebuildServer is rebuild, and with back the writable master replicating
// from the new server, set while the writers are held (the 60-minute run
// of 2026-12-07: set after they were let go, it asked the new server for
// a transaction it did not have yet, 1236, and the campaign lost the
// pair's second side for its last 40 minutes).
func (c *cluster) rebuildServer(ctx context.Context, n *node, pause sync.Locker, back bool) (string, error) {
	w := c.Writable()
	n.db.Close()
	// A new server_id: with the old one, it would skip its predecessor's
	// transactions in the copy (replicate_same_server_id is off, and
	// cannot be on with log_slave_updates).
	opts := c.serverOptions(n.db.ServerID + 10)
	how := "a copy of " + w.name + "'s binlog"
	var db *testenv.MariaDB
	var err error
	if w.partial {
		// An empty server would copy only what the binlog still has,
		// silently missing the rest, or be refused (1236).
		how = "binarc restore --to latest, then " + w.name + "'s binlog from the restored GTID on (" + w.name + "'s binlog is partial)"
		db, err = c.restoreServer(ctx, n, opts)
	} else {
		dir := filepath.Join(c.dir, fmt.Sprintf("%s-rebuilt-%d", n.name, time.Now().UnixNano()))
		db, err = testenv.LaunchMariaDB(ctx, dir, opts)
	}
	if err != nil {
		return "", fmt.Errorf("rebuild %s: %w", n.name, err)
	}
	n.db, n.partial = db, w.partial
	n.proxy.Retarget(db.Addr())
	n.proxy.Cut()
	if err := c.replicate(ctx, n, w, !w.partial); err != nil {
		return "", err
	}
	// The copy first, with the writers on; then the last few transactions
	// with them held.
	if err := n.db.WaitCaughtUp(ctx, w.db, caughtUpMax); err != nil {
		return "", err
	}
	pause.Lock()
	defer pause.Unlock()
	if err := n.db.WaitCaughtUp(ctx, w.db, caughtUpMax); err != nil {
		return "", err
	}
	n.up, n.dead = true, false
	if back {
		return how, c.replicateBack(ctx, w, n)
	}
	return how, nil
}

// restoreServer restores the archive's latest state into a new data
// directory with binarc restore and starts a server on it (gtid_slave_pos
// is the last restored transaction).
func (c *cluster) restoreServer(ctx context.Context, n *node, opts testenv.MariaDBOptions) (*testenv.MariaDB, error) {
	parent := filepath.Join(c.dir, "rebuilds")
	if err := mkdirs(parent); err != nil {
		return nil, err
	}
	if err := testenv.OpenToOthers(parent); err != nil {
		return nil, err
	}
	dir := filepath.Join(parent, fmt.Sprintf("%s-restored-%d", n.name, time.Now().UnixNano()))
	if c.restoreLatest == nil {
		return nil, errors.New("no way to restore from the archive")
	}
	if err := c.restoreLatest(ctx, dir); err != nil {
		return nil, err
	}
	return testenv.LaunchMariaDBOn(ctx, dir, opts)
}
