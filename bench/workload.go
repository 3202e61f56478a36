package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/binarc/binarc/internal/testenv"
	"github.com/go-mysql-org/go-mysql/client"
)

// The backlog is an append-and-expire workload on JSON-ish documents: each
// transaction inserts 2-8 documents of 4-64 KiB (log-uniform), bumps an
// account row, and deletes the documents that fell out of a retention
// window. In ROW format a DELETE logs the whole row again, so the binlog
// grows by about twice the inserted bytes while the tables stay small.
//
// Documents are log records drawn from a word list with random numbers,
// hex session ids and a base64 token each: compressible like real text,
// far from a REPEAT of one string. Every row also carries a short random
// binary attachment that does not compress at all.

var words = strings.Fields(`
	account admin alpha amber apply audit backup balance batch beacon billing
	bronze browse buffer cancel cart charge checkout client cobalt commit config
	coupon credit customer daily debit delete deliver deposit device digest
	discount dispatch draft email export failed fetch filter finance gateway
	gold green health import invoice issue item journal ledger login logout
	merchant message mobile notify order owner paid partner payment pending
	pickup platinum policy portal premium profile purchase queue refund region
	release remote report request resolve retry return review route sales
	schedule search session settle shipment signup silver store submit
	subscribe support sync tablet ticket token transfer update upgrade upload
	user vendor verify wallet warehouse webhook`)

var actions = []string{"create", "update", "view", "delete", "login", "checkout", "refund", "export"}

// docGen makes documents from a seeded generator, so runs are repeatable.
type docGen struct {
	rng *rand.Rand
	ts  time.Time
	buf []byte
}

func newDocGen(seed uint64) *docGen {
	return &docGen{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), ts: time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)}
}

// size returns a log-uniform size in [lo, hi).
func (g *docGen) size(lo, hi int) int {
	return int(float64(lo) * math.Pow(float64(hi)/float64(lo), g.rng.Float64()))
}

func (g *docGen) word() string { return words[g.rng.IntN(len(words))] }

// doc returns a JSON array of log records about n bytes long.
func (g *docGen) doc(n int) string {
	b := append(g.buf[:0], '[')
	var token [18]byte
	for len(b) < n {
		if len(b) > 1 {
			b = append(b, ',')
		}
		g.ts = g.ts.Add(time.Duration(g.rng.IntN(5000)) * time.Millisecond)
		b = append(b, `{"ts":"`...)
		b = g.ts.AppendFormat(b, "2006-01-02T15:04:05.000Z")
		b = append(b, `","user":"`...)
		b = append(b, g.word()...)
		b = append(b, '_')
		b = strconv.AppendInt(b, int64(g.rng.IntN(5000)), 10)
		b = append(b, `","action":"`...)
		b = append(b, actions[g.rng.IntN(len(actions))]...)
		b = append(b, `","amount":`...)
		b = strconv.AppendFloat(b, float64(g.rng.IntN(1000000))/100, 'f', 2, 64)
		b = append(b, `,"ip":"10.`...)
		b = strconv.AppendInt(b, int64(g.rng.IntN(256)), 10)
		b = append(b, '.')
		b = strconv.AppendInt(b, int64(g.rng.IntN(256)), 10)
		b = append(b, '.')
		b = strconv.AppendInt(b, int64(g.rng.IntN(256)), 10)
		b = append(b, `","session":"`...)
		b = strconv.AppendUint(b, g.rng.Uint64(), 16)
		b = append(b, `","token":"`...)
		for i := 0; i < len(token); i += 8 {
			v := g.rng.Uint64()
			for j := 0; j < 8 && i+j < len(token); j++ {
				token[i+j] = byte(v >> (8 * j))
			}
		}
		b = base64.StdEncoding.AppendEncode(b, token[:])
		b = append(b, `","msg":"`...)
		for i, k := 0, 3+g.rng.IntN(6); i < k; i++ {
			if i > 0 {
				b = append(b, ' ')
			}
			b = append(b, g.word()...)
		}
		b = append(b, `"}`...)
	}
	b = append(b, ']')
	g.buf = b
	return string(b)
}

func (g *docGen) randomBytes(n int) []byte {
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		v := g.rng.Uint64()
		for j := 0; j < 8 && i+j < n; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

const (
	backlogWriters   = 2
	retainDocs       = 500 // documents kept per writer table (~11 MiB)
	maxDocsPerTx     = 8
	accountRows      = 1000
	docMinBytes      = 4 << 10
	docMaxBytes      = 64 << 10
	attachmentBytesN = 512
)

func setupSchema(ctx context.Context, m *testenv.MariaDB) error {
	stmts := []string{
		"CREATE DATABASE app",
		"CREATE TABLE app.accounts (id INT PRIMARY KEY, balance BIGINT NOT NULL, updated DATETIME(6) NOT NULL) ENGINE=InnoDB",
		"INSERT INTO app.accounts SELECT seq, 0, NOW(6) FROM app.seq_1_to_" + strconv.Itoa(accountRows),
		"CREATE TABLE app.ticks (id BIGINT AUTO_INCREMENT PRIMARY KEY, at DATETIME(6) NOT NULL, account INT NOT NULL, amount BIGINT NOT NULL, note VARCHAR(255) NOT NULL) ENGINE=InnoDB",
	}
	for w := range backlogWriters {
		stmts = append(stmts, fmt.Sprintf("CREATE TABLE app.docs_%d (id BIGINT PRIMARY KEY, created DATETIME(6) NOT NULL, kind VARCHAR(32) NOT NULL, doc MEDIUMTEXT NOT NULL, attachment VARBINARY(2048) NOT NULL) ENGINE=InnoDB", w))
	}
	return m.Exec(ctx, stmts...)
}

// generateBacklog runs the document workload on backlogWriters connections
// until the primary's binlog files hold at least target bytes in total.
func generateBacklog(ctx context.Context, m *testenv.MariaDB, target uint64) error {
	mon, err := m.Dial(ctx)
	if err != nil {
		return err
	}
	defer testenv.Quit(mon)
	var stop atomic.Bool
	var wg sync.WaitGroup
	errs := make(chan error, backlogWriters)
	for w := range backlogWriters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := backlogWriter(ctx, m, w, &stop); err != nil {
				errs <- fmt.Errorf("backlog writer %d: %w", w, err)
				stop.Store(true)
			}
		}()
	}
	defer func() {
		stop.Store(true)
		wg.Wait()
	}()
	lastReport := time.Now()
	for {
		select {
		case err := <-errs:
			return err
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		files, err := showBinaryLogs(mon)
		if err != nil {
			return err
		}
		total := totalSize(files)
		if time.Since(lastReport) > 10*time.Second {
			logf("  backlog: %s of %s in %d files", mib(total), mib(target), len(files))
			lastReport = time.Now()
		}
		if total >= target {
			stop.Store(true)
			wg.Wait()
			select {
			case err := <-errs:
				return err
			default:
				return nil
			}
		}
	}
}

func backlogWriter(ctx context.Context, m *testenv.MariaDB, w int, stop *atomic.Bool) error {
	conn, err := m.Dial(ctx)
	if err != nil {
		return err
	}
	defer testenv.Quit(conn)
	table := fmt.Sprintf("app.docs_%d", w)
	inserts := make([]*client.Stmt, maxDocsPerTx+1)
	for n := 1; n <= maxDocsPerTx; n++ {
		q := "INSERT INTO " + table + " (id, created, kind, doc, attachment) VALUES " +
			strings.TrimSuffix(strings.Repeat("(?, NOW(6), ?, ?, ?),", n), ",")
		if inserts[n], err = conn.Prepare(q); err != nil {
			return fmt.Errorf("prepare %.60s: %w", q, err)
		}
	}
	update, err := conn.Prepare("UPDATE app.accounts SET balance = balance + ?, updated = NOW(6) WHERE id = ?")
	if err != nil {
		return err
	}
	expire, err := conn.Prepare("DELETE FROM " + table + " WHERE id <= ?")
	if err != nil {
		return err
	}
	g := newDocGen(uint64(w) + 1)
	exec := func(stmt *client.Stmt, args ...any) error {
		r, err := stmt.Execute(args...)
		if err != nil {
			return err
		}
		r.Close()
		return nil
	}
	var next int64 = 1
	args := make([]any, 0, 4*maxDocsPerTx)
	for !stop.Load() && ctx.Err() == nil {
		if _, err := conn.Execute("BEGIN"); err != nil {
			return err
		}
		n := 2 + g.rng.IntN(maxDocsPerTx-1)
		args = args[:0]
		for range n {
			args = append(args, next, actions[g.rng.IntN(len(actions))], g.doc(g.size(docMinBytes, docMaxBytes)),
				g.randomBytes(g.rng.IntN(attachmentBytesN)))
			next++
		}
		if err := exec(inserts[n], args...); err != nil {
			return err
		}
		if err := exec(update, g.rng.IntN(2000)-1000, 1+g.rng.IntN(accountRows)); err != nil {
			return err
		}
		if err := exec(expire, next-1-retainDocs); err != nil {
			return err
		}
		if _, err := conn.Execute("COMMIT"); err != nil {
			return err
		}
	}
	return nil
}

// commitSample is one commit of the steady load whose durability the
// watcher times.
type commitSample struct {
	File      string
	Pos       uint64
	Committed time.Time
	Durable   time.Time // zero until the archive covers Pos
}

// steadyLoad commits small transactions at rate per second for duration,
// on one connection, and calls sample with the commit time and the
// primary's binlog position right after every sampleEvery-th commit. A
// commit that falls behind its schedule goes at once; the load stops when
// the next one would be due after duration. It returns the number of
// commits and how long they took.
func steadyLoad(ctx context.Context, m *testenv.MariaDB, rate int, duration time.Duration, sampleEvery int, sample func(commitSample)) (int, time.Duration, error) {
	start := time.Now()
	n, err := steadyCommits(ctx, m, rate, duration, sampleEvery, sample)
	return n, time.Since(start), err
}

func steadyCommits(ctx context.Context, m *testenv.MariaDB, rate int, duration time.Duration, sampleEvery int, sample func(commitSample)) (int, error) {
	conn, err := m.Dial(ctx)
	if err != nil {
		return 0, err
	}
	defer testenv.Quit(conn)
	insert, err := conn.Prepare("INSERT INTO app.ticks (at, account, amount, note) VALUES (NOW(6), ?, ?, ?)")
	if err != nil {
		return 0, err
	}
	update, err := conn.Prepare("UPDATE app.accounts SET balance = balance + ?, updated = NOW(6) WHERE id = ?")
	if err != nil {
		return 0, err
	}
	g := newDocGen(99)
	interval := time.Second / time.Duration(rate)
	start := time.Now()
	n := 0
	for ; ; n++ {
		due := start.Add(time.Duration(n) * interval)
		if due.Sub(start) >= duration {
			return n, nil
		}
		if d := time.Until(due); d > 0 {
			select {
			case <-ctx.Done():
				return n, ctx.Err()
			case <-time.After(d):
			}
		}
		account, amount := 1+g.rng.IntN(accountRows), g.rng.IntN(10000)-5000
		if _, err := conn.Execute("BEGIN"); err != nil {
			return n, err
		}
		r, err := insert.Execute(account, amount, g.word()+" "+g.word()+" "+strconv.Itoa(n))
		if err != nil {
			return n, err
		}
		r.Close()
		if r, err = update.Execute(amount, account); err != nil {
			return n, err
		}
		r.Close()
		if _, err := conn.Execute("COMMIT"); err != nil {
			return n, err
		}
		if n%sampleEvery != 0 {
			continue
		}
		committed := time.Now()
		r, err = conn.Execute("SHOW MASTER STATUS")
		if err != nil {
			return n, err
		}
		file, err1 := r.GetString(0, 0)
		pos, err2 := r.GetUint(0, 1)
		r.Close()
		if err1 != nil || err2 != nil {
			return n, fmt.Errorf("SHOW MASTER STATUS: %v %v", err1, err2)
		}
		sample(commitSample{File: file, Pos: pos, Committed: committed})
	}
}
