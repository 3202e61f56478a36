package replication

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	gomysql "github.com/go-mysql-org/go-mysql/replication"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// GTIDStartFile asks a MariaDB server, by a binlog dump from the GTID
// position of st, which of its binlog files holds what follows st, and
// that file's starting GTID state (its Gtid_list event). It reads the
// dump's first events and closes it.
//
// It runs no statement: SHOW BINARY LOGS and SHOW BINLOG EVENTS wait for
// MariaDB's binlog lock, which a semi-sync primary holds while commits
// wait for an acknowledgement — from binarc, which cannot give one before
// it knows where to start. The dump thread does not take that lock.
//
// The server refuses (error 1236) when st holds transactions it never had
// (lost at a hard failover): the caller then lists the binlogs instead.
func (c Config) GTIDStartFile(ctx context.Context, st *GTIDState) (string, *GTIDState, error) {
	set, err := mysql.ParseMariadbGTIDSet(st.Pos())
	if err != nil {
		return "", nil, fmt.Errorf("GTID position %q: %w", st.Pos(), err)
	}
	tlsConfig, err := c.TLSConfig(ctx)
	if err != nil {
		return "", nil, err
	}
	syncer := gomysql.NewBinlogSyncer(gomysql.BinlogSyncerConfig{
		TLSConfig: tlsConfig, ServerID: c.ServerID, Flavor: string(FlavorMariaDB),
		Host: c.Host, Port: c.Port, User: c.User, Password: c.Password,
		RawModeEnabled: true, ReadTimeout: c.ReadTimeout, DisableRetrySync: true,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	defer syncer.Close()
	streamer, err := syncer.StartSyncGTID(set)
	if err != nil {
		return "", nil, c.classify(c.classifyTLS(err))
	}
	if c.ReadTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.ReadTimeout)
		defer cancel()
	}
	var file string
	for {
		ev, err := streamer.GetEvent(ctx)
		if err != nil {
			return "", nil, c.classify(err)
		}
		switch ev.Header.EventType {
		case gomysql.ROTATE_EVENT:
			name, err := rotateTarget(ev.RawData)
			if err != nil {
				return "", nil, err
			}
			file = name
		case gomysql.MARIADB_GTID_LIST_EVENT:
			if file == "" {
				return "", nil, fmt.Errorf("the dump from GTID %s sent a Gtid_list before naming its file", st.Pos())
			}
			state, err := EventStartState(ev.RawData)
			return file, state, err
		case gomysql.MARIADB_GTID_EVENT, gomysql.QUERY_EVENT, gomysql.XID_EVENT:
			return "", nil, fmt.Errorf("the dump from GTID %s sent a transaction before the file's Gtid_list", st.Pos())
		}
	}
}

// rotateTarget is the file a ROTATE event (header included, its CRC32
// after the name when the server sends one) names.
func rotateTarget(raw []byte) (string, error) {
	if HasChecksum(raw) {
		raw = raw[:len(raw)-4]
	}
	const body = HeaderLen + 8
	if len(raw) <= body {
		return "", fmt.Errorf("a ROTATE event of %d bytes names no file", len(raw))
	}
	name := raw[body:]
	for _, c := range name {
		if c < 0x21 || c > 0x7e {
			return "", fmt.Errorf("a ROTATE event names %q, not a binlog file", name)
		}
	}
	return string(name), nil
}
