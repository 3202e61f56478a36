package main

// The serve replay measurement (-serve-replay): binarc restore through
// binarc serve (the server's own replication applier) against
// mariadb-binlog | mariadb, on the same binlog, for a bulk load and for
// many small oltp_write_only-like transactions; and the parallel-thread
// setting of the applier, serial against 2 and 4 threads.
//
// The primary first bulk-loads a sysbench-like table (multi-row INSERTs),
// rotates, then runs 4 clients of small transactions (two UPDATEs, a
// DELETE and an INSERT each) until -serve-replay-mb of binlog follows the
// bulk. binarc stream archives it all to S3. Each run replays into a fresh
// empty server: the bulk file from its start (bulk runs), or the small
// transactions onto a server that got the bulk untimed (small runs).
// CHECKSUM TABLE of the target must equal the primary's after every run.

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/binarc/binarc/internal/testenv"
	"github.com/go-mysql-org/go-mysql/client"
)

var (
	serveReplayOnly = flag.Bool("serve-replay", false, "measure only restore through binarc serve against mariadb-binlog | mariadb (small transactions and a bulk load), skipping the other phases")
	serveReplayMiB  = flag.Int("serve-replay-mb", 200, "binlog of small transactions for -serve-replay, in MiB")
	serveBulkRows   = flag.Int("serve-bulk-rows", 400000, "rows bulk-loaded before the small transactions in -serve-replay")
	serveFlush      = flag.String("serve-flush", "1,2", "innodb_flush_log_at_trx_commit settings of the targets for the small-transaction runs of -serve-replay")
)

// serveRun is one timed replay.
type serveRun struct {
	Name    string  `json:"name"`
	Seconds float64 `json:"seconds"`
	// OtherCPU is the CPU time processes outside the bench used meanwhile
	// (the machine may be shared).
	OtherCPU   float64 `json:"other_cpu_seconds"`
	MiBps      float64 `json:"mib_per_second"`
	PeakRSSMiB float64 `json:"binarc_peak_rss_mib,omitempty"`
	Equal      bool    `json:"checksums_equal"`
}

// serveReplay runs the whole measurement and prints its table.
func (b *bench) serveReplay() error {
	sr := &serveReplayRuns{bench: b, rb: &restoreAndBackup{bench: b}}
	if err := sr.prepare(); err != nil {
		return err
	}
	if err := sr.bulk(); err != nil {
		return err
	}
	// Small transactions, onto the bulk-loaded state, with the targets'
	// per-commit fsync on (innodb_flush_log_at_trx_commit=1, the default)
	// and off (2, as binarc restore's temporary server runs).
	for _, flush := range strings.Split(*serveFlush, ",") {
		if err := sr.small(flush); err != nil {
			return err
		}
	}
	sr.print()
	return nil
}

// serveReplayRuns is the state of the serve replay bench: the archived
// binlog, copies of its files, the primary's checksums and the runs so far.
type serveReplayRuns struct {
	*bench
	rb       *restoreAndBackup
	bulkGTID string
	txs      int64
	files    []binlogFile
	paths    []string
	want     map[string]string
	runs     []serveRun
	n        int
	machine  *machineMeter
}

// prepare loads the bulk rows and the small transactions into the
// primary, waits until binarc archived them, and copies the files.
func (sr *serveReplayRuns) prepare() error {
	b, ctx := sr.bench, sr.ctx
	if err := b.db.Exec(ctx, "CREATE DATABASE sb",
		"CREATE TABLE sb.sbtest1 (id INT NOT NULL PRIMARY KEY, k INT NOT NULL DEFAULT 0, c CHAR(120) NOT NULL DEFAULT '', pad CHAR(60) NOT NULL DEFAULT '', KEY k_1 (k)) ENGINE=InnoDB"); err != nil {
		return err
	}
	if err := b.startStream(); err != nil {
		return err
	}
	var err error
	rows := *serveBulkRows
	if err := sr.bulkLoad(rows); err != nil {
		return err
	}
	logf("serve replay: small transactions until %d MiB of binlog", *serveReplayMiB)
	started := time.Now()
	if sr.txs, err = b.smallTransactions(ctx, rows, uint64(*serveReplayMiB)*mebi); err != nil {
		return err
	}
	logf("serve replay: %d transactions in %.0f s", sr.txs, time.Since(started).Seconds())
	if sr.files, err = settledBinaryLogs(ctx, b.db); err != nil {
		return err
	}
	died := streamExited("binarc", b.bin, b.binLog)
	if _, err := b.watch.waitArchived(ctx, sr.files, time.Now(), 10*time.Minute, died); err != nil {
		return err
	}
	if sr.want, err = tableChecksums(ctx, b.db); err != nil {
		return err
	}
	sr.paths, err = copyBinlogs(b.db.DataDir, filepath.Join(b.tmp, "serve-copy"), sr.files)
	return err
}

// bulkLoad inserts rows in transactions of 1000 and rotates the binlog,
// so that the bulk is the first file.
func (sr *serveReplayRuns) bulkLoad(rows int) error {
	ctx := sr.ctx
	logf("serve replay: bulk-loading %d rows", rows)
	for from := 1; from <= rows; from += 1000 {
		var vals []string
		for id := from; id < from+1000 && id <= rows; id++ {
			vals = append(vals, fmt.Sprintf("(%d,%d,'%s','%s')", id, rand.IntN(rows), sbString(120), sbString(60)))
		}
		if err := sr.db.Exec(ctx, "INSERT INTO sb.sbtest1 (id, k, c, pad) VALUES "+strings.Join(vals, ",")); err != nil {
			return err
		}
	}
	bulkGTID, err := sr.db.Query(ctx, "SELECT @@gtid_binlog_pos")
	if err != nil {
		return err
	}
	sr.bulkGTID = strings.TrimSpace(bulkGTID[0][0])
	return sr.db.Exec(ctx, "FLUSH BINARY LOGS")
}

// target starts the next empty restore target.
func (sr *serveReplayRuns) target() (*testenv.MariaDB, error) {
	syscall.Sync()
	i := sr.n
	sr.n++
	return startEmptyMariaDB(sr.ctx, sr.tmp, fmt.Sprintf("serve-replay-%d", i), uint32(100+i), sr.cl)
}

// timed starts measuring a run.
func (sr *serveReplayRuns) timed() { syscall.Sync(); sr.machine = newMachineMeter() }

// done records run r into t of mb MiB, compares t's checksums with the
// primary's when check, and removes t.
func (sr *serveReplayRuns) done(t *testenv.MariaDB, r serveRun, mb float64, check bool) error {
	r.MiBps = mb / r.Seconds
	r.OtherCPU = sr.machine.otherSeconds()
	if check {
		got, err := tableChecksums(sr.ctx, t)
		if err != nil {
			return err
		}
		r.Equal = len(checksumDiff(sr.want, got)) == 0
	}
	logf("  %-48s %7.2f s %7.1f MiB/s  peak RSS %.0f MiB  checksums equal: %v  other processes %.1f CPU-s", r.Name, r.Seconds, r.MiBps, r.PeakRSSMiB, r.Equal, r.OtherCPU)
	sr.runs = append(sr.runs, r)
	_ = t.Kill()
	return os.RemoveAll(t.DataDir)
}

// bulk replays the first file, from its start, alternating the plain
// replay and binarc's.
func (sr *serveReplayRuns) bulk() error {
	bulkMiB := float64(sr.files[0].Size) / mebi
	for _, serveIt := range []bool{false, true, false, true} {
		t, err := sr.target()
		if err != nil {
			return err
		}
		if err := t.Exec(sr.ctx, "SET GLOBAL innodb_flush_log_at_trx_commit = 2"); err != nil {
			return err
		}
		r := serveRun{Name: "bulk, flush 2: mariadb-binlog | mariadb"}
		sr.timed()
		if serveIt {
			r, err = sr.restoreRun(t, "bulk, flush 2: binarc restore --replay serve", sr.files[0].Name+":4", sr.bulkGTID, "0")
		} else {
			var p plainReplayRun
			p, err = sr.rb.plainReplay(sr.paths[:1], t)
			r.Seconds = p.Seconds
		}
		if err != nil {
			return err
		}
		if err := sr.done(t, r, bulkMiB, false); err != nil { // the small transactions are not there
			return err
		}
	}
	return nil
}

// small replays the small transactions onto the bulk-loaded state with
// the target's innodb_flush_log_at_trx_commit at flush.
func (sr *serveReplayRuns) small(flush string) error {
	smallMiB := float64(totalSize(sr.files[1:])) / mebi
	order := []string{"plain", "0", "2", "4"}
	if flush == "2" {
		order = slices.Concat(order, order, order)
	}
	for _, how := range order {
		t, err := sr.target()
		if err != nil {
			return err
		}
		if _, err := sr.rb.plainReplay(sr.paths[:1], t); err != nil {
			return err
		}
		if err := t.Exec(sr.ctx, "SET GLOBAL innodb_flush_log_at_trx_commit = "+flush); err != nil {
			return err
		}
		var r serveRun
		sr.timed()
		if how == "plain" {
			var p plainReplayRun
			p, err = sr.rb.plainReplay(sr.paths[1:], t)
			r = serveRun{Name: "small, flush " + flush + ": mariadb-binlog | mariadb", Seconds: p.Seconds}
		} else {
			r, err = sr.restoreRun(t, "small, flush "+flush+": binarc restore --replay serve, threads "+how, sr.files[1].Name+":4", "latest", how)
		}
		if err != nil {
			return err
		}
		if err := sr.done(t, r, smallMiB, true); err != nil {
			return err
		}
	}
	return nil
}

// print writes the runs as a Markdown table.
func (sr *serveReplayRuns) print() {
	files := sr.files
	fmt.Printf("\n## Restore through serve (%s bulk in 1 file, %s of %d small transactions in %d files)\n\n| run | seconds | MiB/s | binarc peak RSS | CHECKSUM TABLE equal | other processes' CPU-s |\n| --- | --- | --- | --- | --- | --- |\n",
		mib(files[0].Size), mib(totalSize(files[1:])), sr.txs, len(files)-1)
	for _, r := range sr.runs {
		rss := "-"
		if r.PeakRSSMiB > 0 {
			rss = fmt.Sprintf("%.0f MiB", r.PeakRSSMiB)
		}
		eq := "-"
		if strings.HasPrefix(r.Name, "small") || r.Equal {
			eq = strconv.FormatBool(r.Equal)
		}
		fmt.Printf("| %s | %.2f | %.1f | %s | %s | %.1f |\n", strings.ReplaceAll(r.Name, "|", "\\|"), r.Seconds, r.MiBps, rss, eq, r.OtherCPU)
	}
}

// restoreRun times binarc restore --replay serve into a running target.
func (b *bench) restoreRun(t *testenv.MariaDB, name, from, to, threads string) (serveRun, error) {
	r := serveRun{Name: name}
	work, err := os.MkdirTemp(b.tmp, "restore-")
	if err != nil {
		return r, err
	}
	defer os.RemoveAll(work)
	if err := os.Chmod(work, 0o755); err != nil { // the restore's confined programs run as mysql
		return r, err
	}
	logPath := filepath.Join(b.tmp, "serve-restore.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return r, err
	}
	defer logFile.Close()
	cmd := exec.Command(b.binarc, "restore", "--store", "s3://"+b.s3.Bucket+"/"+s3Prefix, "--cluster", cluster,
		"--from", from, "--to", to, "--target", "mysql://root@"+t.Addr(), "--replay", "serve", "--replay-threads", threads, "--work-dir", work,
		// The target got the bulk load first: it already stands at --from.
		"--force-target")
	cmd.Env = append(append(cleanEnv(), b.s3.Env()...), "BINARC_LOG_FORMAT=json", "BINARC_TARGET_PASSWORD=")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	started := time.Now()
	p, err := testenv.StartProcess("binarc restore", cmd)
	if err != nil {
		return r, err
	}
	b.cl.add(p.Kill)
	if err := waitChild(b.ctx, p, replayTimeout); err != nil {
		return r, fmt.Errorf("binarc restore: %w\n%s", err, testenv.TailFile(logPath, 20))
	}
	r.Seconds = time.Since(started).Seconds()
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		r.PeakRSSMiB = float64(ru.Maxrss) / 1024
	}
	return r, nil
}

// smallTransactions runs 4 clients of oltp_write_only-like transactions
// until the binlog after the first file holds limit bytes.
func (b *bench) smallTransactions(ctx context.Context, rows int, limit uint64) (int64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var count int64
	var firstErr error
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := client.Connect(b.db.Addr(), "root", "", "")
			if err != nil {
				mu.Lock()
				firstErr = err
				mu.Unlock()
				cancel()
				return
			}
			defer c.Close()
			for ctx.Err() == nil {
				id1, id2, id3 := 1+rand.IntN(rows), 1+rand.IntN(rows), 1+rand.IntN(rows)
				for _, q := range []string{"BEGIN",
					fmt.Sprintf("UPDATE sb.sbtest1 SET k = k + 1 WHERE id = %d", id1),
					fmt.Sprintf("UPDATE sb.sbtest1 SET c = '%s' WHERE id = %d", sbString(120), id2),
					fmt.Sprintf("DELETE FROM sb.sbtest1 WHERE id = %d", id3),
					fmt.Sprintf("INSERT INTO sb.sbtest1 (id, k, c, pad) VALUES (%d, %d, '%s', '%s')", id3, rand.IntN(rows), sbString(120), sbString(60)),
					"COMMIT"} {
					if _, err := c.Execute(q); err != nil {
						if ctx.Err() == nil {
							mu.Lock()
							firstErr = err
							mu.Unlock()
							cancel()
						}
						return
					}
				}
				mu.Lock()
				count++
				mu.Unlock()
			}
		}()
	}
	conn, err := b.db.Dial(ctx)
	if err == nil {
		defer testenv.Quit(conn)
		for ctx.Err() == nil {
			time.Sleep(time.Second)
			files, err := showBinaryLogs(conn)
			if err != nil {
				break
			}
			if totalSize(files[1:]) >= limit {
				break
			}
		}
	}
	cancel()
	wg.Wait()
	if firstErr != nil {
		return count, firstErr
	}
	return count, err
}

// sbString is sysbench's c/pad shape: groups of 11 digits joined by '-'.
func sbString(n int) string {
	var s strings.Builder
	for s.Len() < n {
		if s.Len() > 0 {
			s.WriteByte('-')
		}
		fmt.Fprintf(&s, "%011d", rand.Int64N(1e11))
	}
	return s.String()[:n]
}
