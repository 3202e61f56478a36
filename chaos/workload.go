package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
)

// TxStatus is what a writer knows of one transaction.
type TxStatus string

const (
	// Acked: COMMIT returned OK and @@last_gtid named its GTID.
	Acked TxStatus = "acked"
	// Uncertain: COMMIT was sent and failed (the connection broke): it may
	// or may not have committed.
	Uncertain TxStatus = "uncertain"
)

// Tx is one writer transaction: a row inserted (id), and optionally hot
// row HotKey set to id.
type Tx struct {
	ID     int64     `json:"id"`
	Writer int       `json:"writer"`
	HotKey int       `json:"hot_key,omitempty"`
	Status TxStatus  `json:"status"`
	GTID   string    `json:"gtid,omitempty"`
	Server string    `json:"server"` // the node it was sent to
	At     time.Time `json:"at"`     // when COMMIT returned
}

// workload is the writers: each commits numbered rows to the writable
// server and records the outcome. The pause lock lets a checkpoint hold
// every writer between transactions.
type workload struct {
	c     *cluster
	pause sync.RWMutex

	mu  sync.Mutex
	txs []Tx
	ddl int

	stop chan struct{}
	wg   sync.WaitGroup
}

func (w *workload) start(seed uint64, writers int) {
	w.stop = make(chan struct{})
	for i := 1; i <= writers; i++ {
		w.wg.Add(1)
		go w.writer(i, rand.New(rand.NewPCG(seed, uint64(i))))
	}
}

func (w *workload) halt() {
	close(w.stop)
	w.wg.Wait()
}

func (w *workload) record(tx Tx) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.txs = append(w.txs, tx)
}

// records returns a copy of the records so far.
func (w *workload) records() []Tx {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]Tx(nil), w.txs...)
}

func (w *workload) writer(id int, rng *rand.Rand) {
	defer w.wg.Done()
	var conn *client.Conn
	var on *node
	n := int64(0)
	for {
		select {
		case <-w.stop:
			if conn != nil {
				conn.Close()
			}
			return
		case <-time.After(time.Duration(10+rng.IntN(40)) * time.Millisecond):
		}
		target := w.c.Writable()
		if conn == nil || on != target {
			if conn != nil {
				conn.Close()
			}
			conn, on = dialWriter(target), target
			if conn == nil {
				time.Sleep(200 * time.Millisecond)
				continue
			}
		}
		n++
		tx := Tx{ID: int64(id)*10_000_000 + n, Writer: id, Server: on.name}
		if rng.IntN(4) == 0 {
			tx.HotKey = 1 + rng.IntN(hotRows)
		}
		ddl := id == 1 && rng.IntN(150) == 0
		if !w.commit(conn, &tx, ddl) {
			conn.Close()
			conn = nil
		}
	}
}

// dialWriter connects as the writer account with short timeouts, so a
// frozen or killed server cannot hold a writer (and a checkpoint) long.
func dialWriter(n *node) *client.Conn {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	conn, err := client.ConnectWithContext(ctx, n.db.Addr(), writerUser, writerPass, "app", 3*time.Second, func(c *client.Conn) error {
		c.ReadTimeout = 5 * time.Second
		c.WriteTimeout = 5 * time.Second
		return nil
	})
	if err != nil {
		return nil
	}
	return conn
}

// commit runs one transaction and records it if COMMIT was sent. It
// reports whether the connection is still usable.
func (w *workload) commit(conn *client.Conn, tx *Tx, ddl bool) bool {
	w.pause.RLock()
	defer w.pause.RUnlock()
	if ddl {
		w.mu.Lock()
		w.ddl++
		n := w.ddl
		w.mu.Unlock()
		// DDL now and then: a table created, and the one before dropped.
		if _, err := conn.Execute(fmt.Sprintf("CREATE TABLE app.ddl_%d (id INT PRIMARY KEY, note VARCHAR(20))", n)); err != nil {
			return false
		}
		if _, err := conn.Execute(fmt.Sprintf("DROP TABLE IF EXISTS app.ddl_%d", n-1)); err != nil {
			return false
		}
	}
	stmts := []string{"BEGIN", fmt.Sprintf("INSERT INTO app.rows VALUES (%d, %d, '%s')", tx.ID, tx.Writer, strings.Repeat("x", 40+int(tx.ID%100)))}
	if tx.HotKey != 0 {
		stmts = append(stmts, fmt.Sprintf("UPDATE app.hot SET v = %d WHERE k = %d", tx.ID, tx.HotKey))
	}
	for _, s := range stmts {
		if _, err := conn.Execute(s); err != nil {
			return false // not committed: read_only, a broken link
		}
	}
	_, err := conn.Execute("COMMIT")
	tx.At = time.Now()
	if err != nil {
		tx.Status = Uncertain
		w.record(*tx)
		return false
	}
	res, err := conn.Execute("SELECT @@last_gtid")
	if err != nil {
		tx.Status = Uncertain // committed, but its GTID is unknown
		w.record(*tx)
		return false
	}
	gtid, _ := res.GetString(0, 0)
	tx.GTID, tx.Status = strings.Clone(gtid), Acked
	w.record(*tx)
	return true
}
