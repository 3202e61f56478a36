package integration

import (
	"context"
	"testing"
	"time"

	"github.com/binarc/binarc/integration/testenv"
)

// TestSemiSyncFrozenLinkReconnect: the link between binarc and a
// semi-sync primary freezes (packets stop, sockets stay open: a partition
// or a middlebox that dropped the flow), and binarc is restarted. The new
// process dumps under the same server_id; MariaDB 10.11 then removes the
// old, silent connection from its semi-sync acknowledgement receiver and
// waits for the receiver, which polls with no timeout, holding the
// server's thread list: the primary accepted no connection at all (the
// fault campaign's seed 2026 under --semi-sync, RELIABILITY finding 14;
// this test hung the same way, every time). binarc now records its dump
// connection in the lease, and its successor ends it first. The primary
// must keep answering new connections, and binarc must become its
// semi-sync replica again.
func TestSemiSyncFrozenLinkReconnect(t *testing.T) {
	t.Parallel()
	s3 := testenv.StartS3(t)
	e := newRoundEnv(t, s3, "freeze", semiSyncPrimary(2*time.Second))
	proxy := startProxy(t, e.primary.Addr())
	args := e.streamArgs("--semi-sync", "--heartbeat", "500ms", "--read-timeout", "3s")
	args[2] = "mysql://" + replUser + "@" + proxy.Addr()
	p := e.start(args...)
	waitSemiSyncReplica(t, e.primary)
	e.primary.Exec(t, "CREATE DATABASE zl", zlTable, "INSERT INTO zl.acked VALUES (1, 0)")

	proxy.Freeze()
	// A commit the frozen binarc cannot acknowledge: the primary waits
	// out its 2 s timeout and goes on without it.
	e.primary.Exec(t, "INSERT INTO zl.acked VALUES (2, 0)")
	p.kill()
	p = e.start(args...)
	p.waitLog(t, "streaming from the primary", 30*time.Second) // without the fix, its dump never answered
	// The primary answers a new connection, within seconds.
	answered := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 25*time.Second)
		defer cancel()
		answered <- e.primary.MariaDB.Exec(ctx, "INSERT INTO zl.acked VALUES (3, 0)")
	}()
	select {
	case err := <-answered:
		if err != nil {
			t.Fatalf("the primary refused a connection after binarc reconnected: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("the primary accepted no connection for 30 s after binarc reconnected over a frozen link (processlist as root would hang too)")
	}
	waitSemiSyncReplica(t, e.primary)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := writeLoad(ctx, e.primary, loadOptions{From: 0, To: 20}); err != nil {
		t.Fatal(err)
	}
	p.running(t, "binarc exited after the frozen link")
	p.stop(t)
	if len(logLines(p.out.String(), "ended the previous binarc's dump connection")) != 1 {
		t.Errorf("the new binarc did not say it ended its predecessor's dump connection")
	}
}
