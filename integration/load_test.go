package integration

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/binarc/binarc/integration/testenv"
	"github.com/go-mysql-org/go-mysql/client"
)

// loadOptions shapes a write load.
type loadOptions struct {
	From, To int  // iteration numbers: each writes distinct rows
	BigRow   bool // write one row event larger than 16 MiB (split across protocol packets)
	FlushAt  int  // FLUSH BINARY LOGS every this many iterations (0: never)
}

// writeLoad writes a mixed load to the primary: multi-statement
// transactions, single-statement autocommits, DDL, and optionally a huge
// row. It returns the first error instead of failing the test, so it can
// run in a goroutine.
func writeLoad(ctx context.Context, m *testenv.MariaDB, o loadOptions) error {
	c, err := client.ConnectWithContext(ctx, m.Addr(), m.RootUser, m.RootPassword, "", 10*time.Second)
	if err != nil {
		return err
	}
	defer c.Quit()
	exec := func(sql string) error {
		r, err := c.Execute(sql)
		if err != nil {
			return fmt.Errorf("%.80s: %w", sql, err)
		}
		r.Close()
		return nil
	}
	for _, s := range []string{
		"CREATE DATABASE IF NOT EXISTS app",
		"CREATE TABLE IF NOT EXISTS app.accounts (id INT PRIMARY KEY, owner VARCHAR(64), balance BIGINT, note TEXT) ENGINE=InnoDB",
		"CREATE TABLE IF NOT EXISTS app.events (id BIGINT AUTO_INCREMENT PRIMARY KEY, kind VARCHAR(16), payload VARBINARY(2048)) ENGINE=InnoDB",
		"CREATE TABLE IF NOT EXISTS app.blobs (id INT PRIMARY KEY, b LONGBLOB) ENGINE=InnoDB",
	} {
		if err := exec(s); err != nil {
			return err
		}
	}
	for i := o.From; i < o.To; i++ {
		if ctx.Err() != nil {
			return nil
		}
		stmts := []string{
			"BEGIN",
			fmt.Sprintf("INSERT INTO app.accounts VALUES (%d, 'owner-%d', %d, REPEAT('n', %d))", i, i, i*10, 100+i%700),
			fmt.Sprintf("INSERT INTO app.events (kind, payload) VALUES ('open', RANDOM_BYTES(%d)), ('audit', RANDOM_BYTES(64))", 64+i%900),
			fmt.Sprintf("UPDATE app.accounts SET balance = balance + 1 WHERE id = %d", i/2),
			"COMMIT",
			fmt.Sprintf("INSERT INTO app.events (kind, payload) VALUES ('auto', RANDOM_BYTES(%d))", 1+i%1000),
		}
		if i%7 == 3 {
			stmts = append(stmts, fmt.Sprintf("DELETE FROM app.events WHERE id %% 11 = %d LIMIT 3", i%11))
		}
		if i%50 == 25 {
			stmts = append(stmts,
				fmt.Sprintf("CREATE TABLE app.ddl_%d (x INT PRIMARY KEY, y VARCHAR(10))", i),
				fmt.Sprintf("INSERT INTO app.ddl_%d VALUES (1, 'a'), (2, 'b')", i),
				fmt.Sprintf("ALTER TABLE app.ddl_%d ADD COLUMN z INT DEFAULT %d", i, i),
				fmt.Sprintf("DROP TABLE app.ddl_%d", i))
		}
		if o.FlushAt > 0 && i%o.FlushAt == o.FlushAt-1 {
			stmts = append(stmts, "FLUSH BINARY LOGS")
		}
		if o.BigRow && i == (o.From+o.To)/2 {
			// 17 MiB in one row: one rows event above the 16 MiB packet
			// size, and above the segment size.
			stmts = append(stmts, fmt.Sprintf("INSERT INTO app.blobs VALUES (%d, REPEAT(SHA2(%d, 256), 17*1024*1024/64))", i, i))
		}
		for _, s := range stmts {
			if err := exec(s); err != nil {
				return fmt.Errorf("iteration %d: %w", i, err)
			}
		}
	}
	return nil
}

// backgroundLoad is writeLoad running in a goroutine until stopped.
type backgroundLoad struct {
	name   string // what a failure is reported as
	cancel context.CancelFunc
	done   chan error
}

// startLoad runs writeLoad on the primary with o in the background; stop
// ends it and fails the test if the load failed before.
func (e *env) startLoad(name string, o loadOptions) *backgroundLoad {
	ctx, cancel := context.WithCancel(context.Background())
	l := &backgroundLoad{name: name, cancel: cancel, done: make(chan error, 1)}
	go func() { l.done <- writeLoad(ctx, e.primary, o) }()
	return l
}

func (l *backgroundLoad) stop(t *testing.T) {
	t.Helper()
	l.cancel()
	if err := <-l.done; err != nil && !strings.Contains(err.Error(), "context canceled") {
		t.Fatalf("%s: %v", l.name, err)
	}
}
