package integration

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/binarc/binarc/integration/testenv"
	"github.com/binarc/binarc/replication"
	"github.com/go-mysql-org/go-mysql/mysql"
	gomysql "github.com/go-mysql-org/go-mysql/replication"
)

// TestEndDumpKillsOnlyTheRecordedDump: replication.EndDump, which a new
// binarc uses to end its predecessor's dump connection, kills a thread
// only if it is a Binlog Dump of binarc's own user on the server as it was
// when the id was recorded: never a query session of that user, never a
// thread whose id a restarted server may have reused, never one that is
// gone.
func TestEndDumpKillsOnlyTheRecordedDump(t *testing.T) {
	t.Parallel()
	m := testenv.StartMariaDB(t, testenv.MariaDBOptions{})
	m.CreateReplicationUser(t, replUser, replPass)
	cfg := replication.Config{Host: "127.0.0.1", Port: uint16(m.Port), User: replUser, Password: replPass,
		TLS: replication.TLSOptions{Mode: replication.TLSDisable}}
	ctx := context.Background()

	syncer := gomysql.NewBinlogSyncer(gomysql.BinlogSyncerConfig{ServerID: 4242, Flavor: "mariadb", Host: "127.0.0.1",
		Port: uint16(m.Port), User: replUser, Password: replPass, RawModeEnabled: true, DisableRetrySync: true,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	defer syncer.Close()
	if _, err := syncer.StartSync(mysql.Position{Name: "mysql-bin.000001", Pos: 4}); err != nil {
		t.Fatal(err)
	}
	dump := syncer.LastConnectionID()
	session, err := cfg.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer session.Close()
	alive := func(id uint32) bool {
		return len(m.Query(t, "SELECT ID FROM information_schema.PROCESSLIST WHERE ID = "+strconv.FormatUint(uint64(id), 10))) == 1
	}

	if ended, err := replication.EndDump(ctx, cfg, session.GetConnectionID(), time.Now()); err != nil || ended || !alive(session.GetConnectionID()) {
		t.Fatalf("EndDump on binarc's query session: ended %v, %v; the session must live", ended, err)
	}
	if ended, err := replication.EndDump(ctx, cfg, dump, time.Now().Add(-time.Hour)); err != nil || ended || !alive(dump) {
		t.Fatalf("EndDump of an id recorded before the server started: ended %v, %v; the thread must live", ended, err)
	}
	if ended, err := replication.EndDump(ctx, cfg, dump, time.Now()); err != nil || !ended {
		t.Fatalf("EndDump of binarc's dump: ended %v, %v", ended, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for alive(dump) {
		if time.Now().After(deadline) {
			t.Fatal("the dump thread outlived its KILL")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if ended, err := replication.EndDump(ctx, cfg, dump, time.Now()); err != nil || ended {
		t.Fatalf("EndDump of a thread that is gone: ended %v, %v", ended, err)
	}
}
