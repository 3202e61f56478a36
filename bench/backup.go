package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/binarc/binarc/internal/testenv"
	"github.com/binarc/binarc/snapshot"
	"github.com/klauspost/compress/zstd"
)

// The snapshot measurement backs up a replica of the bench primary: the
// server binarc restore filled, made a replica at the primary's binlog
// end, plus documents loaded into it directly (not through the primary,
// whose binlog the replay phase has measured). Both contenders copy the
// same datadir, alternating, backupRuns times each (once with -quick).
const (
	backupRuns         = 3
	backupTimeout      = 10 * time.Minute
	targetBackupRatio  = 0.8
	backupUser         = "snapshot"
	backupWriters      = 2
	backupDocsPerStmt  = 8
	backupUserGrants   = "RELOAD, PROCESS, BINLOG MONITOR, SLAVE MONITOR, REPLICATION SLAVE ADMIN"
	backupZstdLevel    = "-3" // zstd's default, said aloud
	dirtyPagesDeadline = time.Minute
)

// backupResults is the snapshot measurement.
type backupResults struct {
	LoadedBytes  int64   `json:"loaded_bytes"`
	LoadSeconds  float64 `json:"load_seconds"`
	DatadirBytes int64   `json:"datadir_bytes"`
	// Local is mariabackup | zstd as typed (one compression thread, zstd's
	// default), the reference; LocalAllCores is zstd -T0.
	Local         backupSeries `json:"local_mariabackup_zstd"`
	LocalAllCores backupSeries `json:"local_mariabackup_zstd_t0"`
	Binarc        backupSeries `json:"binarc_snapshot"`
	Ratio         float64      `json:"ratio_binarc_to_local"`
	RatioAllCores float64      `json:"ratio_binarc_to_local_t0"`
	// PrimaryEnd is the primary's binlog end while the snapshots ran (it
	// takes no writes then), where every snapshot's coordinates must
	// point; CoordinateErrors lists the ones that do not.
	PrimaryEnd       string   `json:"primary_end"`
	CoordinateErrors []string `json:"coordinate_errors,omitempty"`
}

// backupSeries is the runs of one contender and the median one, by time.
type backupSeries struct {
	backupRun
	Runs []backupRun `json:"runs"`
}

func (s *backupSeries) add(run backupRun) {
	s.Runs = append(s.Runs, run)
	s.backupRun = medianBy(s.Runs, func(r backupRun) float64 { return r.Seconds })
}

// backupRun is one timed backup.
type backupRun struct {
	Seconds     float64 `json:"seconds"`
	RawBytes    int64   `json:"raw_bytes"`
	StoredBytes int64   `json:"stored_bytes"`
	MiBps       float64 `json:"raw_mib_per_second"`
	// CPU is CPU seconds by program: mariabackup and zstd, or binarc and
	// the mariabackup it ran; the replica's mariadbd and versitygw; and
	// "other", the rest of the machine.
	CPU map[string]float64 `json:"cpu_seconds"`
}

// backupReplica measures snapshot throughput.
func (rb *restoreAndBackup) backupReplica() error {
	res := &rb.r.Backup
	replica := rb.restored
	files, err := settledBinaryLogs(rb.ctx, rb.db)
	if err != nil {
		return err
	}
	// The restore replayed everything up to the end of the last file (the
	// replay phase checked the archive held all of it).
	last := files[len(files)-1]
	if err := replicate(rb.ctx, replica, rb.db, replUser, rb.replPass, last.Name, last.Size); err != nil {
		return err
	}
	// The snapshot user comes through replication, which shows the
	// replica applies what the primary writes.
	pass := "bench-" + testenv.RandomHex(8)
	account := "'" + backupUser + "'@'127.0.0.1'"
	if err := rb.db.Exec(rb.ctx, "CREATE USER "+account+" IDENTIFIED BY '"+pass+"'", "GRANT "+backupUserGrants+" ON *.* TO "+account); err != nil {
		return err
	}
	if err := waitApplied(rb.ctx, replica, rb.db, 60*time.Second); err != nil {
		return err
	}
	st, err := rb.db.Query(rb.ctx, "SHOW MASTER STATUS")
	if err != nil {
		return err
	}
	res.PrimaryEnd = st[0][0] + ":" + st[0][1]

	target := int64(rb.opts.snapshotDataMiB) * mebi
	logf("snapshot: loading %s of documents into the replica", mib(uint64(target)))
	t0 := time.Now()
	if res.LoadedBytes, err = loadDocuments(rb.ctx, replica, target); err != nil {
		return err
	}
	res.LoadSeconds = time.Since(t0).Seconds()
	t0 = time.Now()
	if err := flushDirtyPages(rb.ctx, replica); err != nil {
		return err
	}
	res.DatadirBytes = treeBytes(replica.DataDir)
	logf("  loaded in %.1f s, flushed in %.1f s; replica datadir %s", res.LoadSeconds, time.Since(t0).Seconds(), mib(uint64(res.DatadirBytes)))

	dir := filepath.Join(rb.tmp, "backup")
	if err := os.Mkdir(dir, 0o700); err != nil {
		return err
	}
	seen := 0
	runs := backupRuns
	if rb.opts.quick {
		runs = 1
	}
	for i := range runs {
		for _, l := range []struct {
			series  *backupSeries
			threads string
		}{{&res.Local, "-T1"}, {&res.LocalAllCores, "-T0"}} {
			run, err := rb.localBackup(dir, i, replica, pass, l.threads)
			if err != nil {
				return err
			}
			logf("  mariabackup | zstd %s > file: %.2f s, %.1f MiB/s raw", l.threads, run.Seconds, run.MiBps)
			l.series.add(run)
		}
		run, err := rb.binarcSnapshot(dir, i, replica, pass, &seen)
		if err != nil {
			return err
		}
		logf("  binarc snapshot:               %.2f s, %.1f MiB/s raw", run.Seconds, run.MiBps)
		res.Binarc.add(run)
	}
	res.Ratio = res.Binarc.MiBps / res.Local.MiBps
	res.RatioAllCores = res.Binarc.MiBps / res.LocalAllCores.MiBps
	logf("snapshot: ratio %.2f to zstd -T1, %.2f to zstd -T0", res.Ratio, res.RatioAllCores)
	replica.Close()
	os.RemoveAll(replica.DataDir)
	return nil
}

// loadDocuments inserts documents into bulk.docs_N on backupWriters
// connections until their bytes reach target, and returns the bytes
// inserted.
func loadDocuments(ctx context.Context, m *testenv.MariaDB, target int64) (int64, error) {
	stmts := []string{"CREATE DATABASE bulk"}
	for w := range backupWriters {
		stmts = append(stmts, fmt.Sprintf("CREATE TABLE bulk.docs_%d (id BIGINT PRIMARY KEY, created DATETIME(6) NOT NULL, kind VARCHAR(32) NOT NULL, doc MEDIUMTEXT NOT NULL, attachment VARBINARY(2048) NOT NULL) ENGINE=InnoDB", w))
	}
	if err := m.Exec(ctx, stmts...); err != nil {
		return 0, err
	}
	var loaded atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, backupWriters)
	for w := range backupWriters {
		wg.Go(func() {
			if err := loadWriter(ctx, m, w, target, &loaded); err != nil {
				errs <- fmt.Errorf("load writer %d: %w", w, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	return loaded.Load(), <-errs
}

func loadWriter(ctx context.Context, m *testenv.MariaDB, w int, target int64, loaded *atomic.Int64) error {
	conn, err := m.Dial(ctx)
	if err != nil {
		return err
	}
	defer testenv.Quit(conn)
	q := fmt.Sprintf("INSERT INTO bulk.docs_%d (id, created, kind, doc, attachment) VALUES ", w) +
		strings.TrimSuffix(strings.Repeat("(?, NOW(6), ?, ?, ?),", backupDocsPerStmt), ",")
	insert, err := conn.Prepare(q)
	if err != nil {
		return err
	}
	// Seeds apart from the backlog's, so no document repeats one there.
	g := newDocGen(uint64(1000 + w))
	args := make([]any, 0, 4*backupDocsPerStmt)
	for id := int64(1); loaded.Load() < target && ctx.Err() == nil; {
		args = args[:0]
		var n int64
		for range backupDocsPerStmt {
			doc, att := g.doc(g.size(docMinBytes, docMaxBytes)), g.randomBytes(g.rng.IntN(attachmentBytesN))
			args = append(args, id, actions[g.rng.IntN(len(actions))], doc, att)
			n += int64(len(doc) + len(att))
			id++
		}
		r, err := insert.Execute(args...)
		if err != nil {
			return err
		}
		r.Close()
		loaded.Add(n)
	}
	return ctx.Err()
}

// flushDirtyPages writes every dirty page and waits for the checkpoint to
// follow, so the backups do not copy the load's redo log: that amount
// would depend on when each backup ran. MariaDB 10.5+ flushes to
// innodb_max_dirty_pages_pct only when the low-water mark is set too (0,
// the default, turns pre-flushing off).
func flushDirtyPages(ctx context.Context, m *testenv.MariaDB) error {
	if err := m.Exec(ctx, "SET GLOBAL innodb_io_capacity_max = 100000", "SET GLOBAL innodb_io_capacity = 50000",
		"SET GLOBAL innodb_max_dirty_pages_pct_lwm = 0.001", "SET GLOBAL innodb_max_dirty_pages_pct = 0.001"); err != nil {
		return err
	}
	defer m.Exec(ctx, "SET GLOBAL innodb_max_dirty_pages_pct = DEFAULT", "SET GLOBAL innodb_max_dirty_pages_pct_lwm = DEFAULT",
		"SET GLOBAL innodb_io_capacity = DEFAULT", "SET GLOBAL innodb_io_capacity_max = DEFAULT")
	deadline := time.Now().Add(dirtyPagesDeadline)
	for {
		rows, err := m.Query(ctx, "SELECT VARIABLE_NAME, VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS"+
			" WHERE VARIABLE_NAME IN ('INNODB_BUFFER_POOL_PAGES_DIRTY', 'INNODB_CHECKPOINT_AGE')")
		if err != nil {
			return err
		}
		st := map[string]int64{}
		for _, r := range rows {
			st[r[0]], _ = strconv.ParseInt(r[1], 10, 64)
		}
		if st["INNODB_BUFFER_POOL_PAGES_DIRTY"] == 0 && st["INNODB_CHECKPOINT_AGE"] < 1<<20 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("replica %s still has %d dirty pages and a checkpoint age of %d bytes after %v",
				m.Addr(), st["INNODB_BUFFER_POOL_PAGES_DIRTY"], st["INNODB_CHECKPOINT_AGE"], dirtyPagesDeadline)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// localBackup runs mariabackup --backup --stream=xbstream | zstd -3
// THREADS > file, the two connected by a pipe as a shell would, and counts
// the raw bytes by decompressing the file afterwards (not timed).
func (rb *restoreAndBackup) localBackup(dir string, i int, replica *testenv.MariaDB, pass, threads string) (backupRun, error) {
	run := backupRun{CPU: map[string]float64{}}
	mariabackup, err := testenv.BinaryPath("mariabackup", "mariadb-backup")
	if err != nil {
		return run, err
	}
	zstdBin, err := testenv.BinaryPath("zstd")
	if err != nil {
		return run, err
	}
	out := filepath.Join(dir, fmt.Sprintf("local-%d.xbstream.zst", i))
	logPath := filepath.Join(dir, fmt.Sprintf("local-%d.log", i))
	logFile, err := os.Create(logPath)
	if err != nil {
		return run, err
	}
	defer logFile.Close()
	// The same arguments binarc gives mariabackup, the account on the
	// command line instead of in an option file.
	backup := exec.Command(mariabackup, "--backup", "--stream=xbstream",
		"--user="+backupUser, "--password="+pass, "--host=127.0.0.1", "--port="+strconv.Itoa(replica.Port),
		"--target-dir="+filepath.Join(dir, fmt.Sprintf("local-%d-target", i)), "--datadir="+replica.DataDir)
	compress := exec.Command(zstdBin, "-q", backupZstdLevel, threads, "-o", out)
	backup.Stderr, compress.Stderr = logFile, logFile
	tail := func() string { return testenv.TailFile(logPath, 20) }
	syscall.Sync() // as before each replay
	meter := newCPUMeter(map[string]int{"mariadbd": replica.Pid()})
	machine := newMachineMeter()
	started := time.Now()
	if err := rb.runPipe(piped{"mariabackup", backup, tail}, piped{"zstd", compress, tail}, backupTimeout); err != nil {
		return run, err
	}
	run.Seconds = time.Since(started).Seconds()
	run.CPU["mariabackup"] = rusageSeconds(backup.ProcessState)
	run.CPU["zstd"] = rusageSeconds(compress.ProcessState)
	run.CPU["mariadbd"] = meter.used()["mariadbd"]
	run.CPU["other"] = machine.otherSeconds()
	if run.RawBytes, run.StoredBytes, err = zstdSizes(out); err != nil {
		return run, err
	}
	run.MiBps = float64(run.RawBytes) / mebi / run.Seconds
	os.Remove(out)
	os.RemoveAll(filepath.Join(dir, fmt.Sprintf("local-%d-target", i)))
	return run, nil
}

// zstdSizes returns the decompressed and the compressed size of a zstd
// file, which also proves it whole.
func zstdSizes(path string) (raw, stored int64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, 0, err
	}
	dec, err := zstd.NewReader(f)
	if err != nil {
		return 0, 0, err
	}
	defer dec.Close()
	raw, err = io.Copy(io.Discard, dec)
	if err != nil {
		return 0, 0, fmt.Errorf("decompress %s: %w", path, err)
	}
	return raw, fi.Size(), nil
}

// binarcSnapshot runs binarc snapshot of the replica into the S3 server
// and reads the sizes from the manifest it wrote. seen counts the
// snapshots so far.
func (rb *restoreAndBackup) binarcSnapshot(dir string, i int, replica *testenv.MariaDB, pass string, seen *int) (backupRun, error) {
	run := backupRun{CPU: map[string]float64{}}
	logPath := filepath.Join(dir, fmt.Sprintf("binarc-snapshot-%d.log", i))
	logFile, err := os.Create(logPath)
	if err != nil {
		return run, err
	}
	defer logFile.Close()
	work := filepath.Join(dir, "binarc-tmp")
	if err := os.MkdirAll(work, 0o700); err != nil {
		return run, err
	}
	cmd := exec.Command(rb.binarc, "snapshot",
		"--source", "mysql://"+backupUser+"@"+replica.Addr(),
		"--store", "s3://"+rb.s3.Bucket+"/"+s3Prefix, "--cluster", cluster)
	cmd.Env = append(append(cleanEnv(), rb.s3.Env()...), "TMPDIR="+work, "BINARC_SOURCE_PASSWORD="+pass, "BINARC_LOG_FORMAT=json")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	syscall.Sync() // as before each replay
	meter := newCPUMeter(map[string]int{"mariadbd": replica.Pid(), "versitygw": rb.s3.Pid()})
	machine := newMachineMeter()
	started := time.Now()
	p, err := testenv.StartProcess("binarc snapshot", cmd)
	if err != nil {
		return run, err
	}
	rb.cl.add(p.Kill)
	tree := watchTreeCPU(p.Pid(), 100*time.Millisecond)
	err = waitChild(rb.ctx, p, backupTimeout)
	run.Seconds = time.Since(started).Seconds()
	children := tree.finish()
	if err != nil {
		return run, fmt.Errorf("binarc snapshot: %w\n%s", err, testenv.TailFile(logPath, 20))
	}
	used := meter.used()
	run.CPU["mariabackup"] = children["mariabackup"]
	run.CPU["binarc"] = rusageSeconds(cmd.ProcessState) - children["mariabackup"]
	run.CPU["mariadbd"], run.CPU["versitygw"] = used["mariadbd"], used["versitygw"]
	run.CPU["other"] = machine.otherSeconds()

	entries, err := snapshot.List(rb.ctx, rb.watch.cat.Store, rb.watch.cat.Layout, nil)
	if err != nil {
		return run, err
	}
	var complete []snapshot.Entry
	for _, e := range entries {
		if e.Complete {
			complete = append(complete, e)
		}
	}
	if len(complete) != *seen+1 {
		return run, fmt.Errorf("binarc snapshot exited 0 but the store lists %d complete snapshots, not %d", len(complete), *seen+1)
	}
	*seen++
	m := complete[len(complete)-1].Manifest
	run.RawBytes, run.StoredBytes = m.RawSize, m.StoredSize
	if got := fmt.Sprintf("%s:%d", m.Coordinates.File, m.Coordinates.Pos); got != rb.r.Backup.PrimaryEnd {
		rb.r.Backup.CoordinateErrors = append(rb.r.Backup.CoordinateErrors, fmt.Sprintf("snapshot %s at %q", m.ID, got))
	}
	run.MiBps = float64(run.RawBytes) / mebi / run.Seconds
	return run, nil
}

// treeBytes is the size of the regular files under dir.
func treeBytes(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

func runsLabel(n int) string {
	if n == 1 {
		return "1 run"
	}
	return fmt.Sprintf("median of %d", n)
}

func backupSpeeds(runs []backupRun) string {
	var s []string
	for _, r := range runs {
		s = append(s, fmt.Sprintf("%.0f", r.MiBps))
	}
	return strings.Join(s, ", ") + " MiB/s"
}

func (r *backupResults) rows() [][]string {
	local := func(name string, l *backupSeries) []string {
		return []string{fmt.Sprintf("mariabackup \\| %s > local file (%s)", name, runsLabel(len(l.Runs))), fmt.Sprintf("%.1f MiB/s raw (%.2f s for %s raw, %s stored; CPU-s: mariabackup %.2f, zstd %.2f, mariadbd %.2f; other processes %.2f; runs %s)",
			l.MiBps, l.Seconds, mib(uint64(l.RawBytes)), mib(uint64(l.StoredBytes)), l.CPU["mariabackup"], l.CPU["zstd"], l.CPU["mariadbd"], l.CPU["other"], backupSpeeds(l.Runs)), "", ""}
	}
	b := &r.Binarc
	coords := fmt.Sprintf("all %d at %s", len(b.Runs), r.PrimaryEnd)
	if len(r.CoordinateErrors) > 0 {
		coords = "NO, the primary is at " + r.PrimaryEnd + ": " + strings.Join(r.CoordinateErrors, "; ")
	}
	return [][]string{
		local("zstd", &r.Local),
		local("zstd -T0", &r.LocalAllCores),
		{fmt.Sprintf("binarc snapshot of the replica to S3 (%s)", runsLabel(len(b.Runs))), fmt.Sprintf("%.1f MiB/s raw (%.2f s for %s raw, %s stored; CPU-s: binarc %.2f, mariabackup %.2f, mariadbd %.2f, versitygw %.2f; other processes %.2f; runs %s)",
			b.MiBps, b.Seconds, mib(uint64(b.RawBytes)), mib(uint64(b.StoredBytes)), b.CPU["binarc"], b.CPU["mariabackup"], b.CPU["mariadbd"], b.CPU["versitygw"], b.CPU["other"], backupSpeeds(b.Runs)), "", ""},
		{"ratio binarc snapshot / mariabackup \\| zstd", fmt.Sprintf("%.2f", r.Ratio), fmt.Sprintf(">= %.1f", targetBackupRatio), pass(r.Ratio >= targetBackupRatio)},
		{"ratio binarc snapshot / mariabackup \\| zstd -T0", fmt.Sprintf("%.2f", r.RatioAllCores), "", ""},
		{"snapshot coordinates (manifest)", coords, "the primary's end", pass(len(r.CoordinateErrors) == 0)},
	}
}

func (r *backupResults) method(w io.Writer) {
	fmt.Fprintf(w, "Snapshot: the restored server made a replica of the primary, plus %s of documents loaded into it directly (dirty pages flushed); binarc snapshot (physical, to S3) against mariabackup --backup --stream=xbstream | zstd > file on local disk (zstd's defaults: level 3, one thread; and with -T0, all cores), alternating; MiB/s of raw xbstream bytes.\n",
		mib(uint64(r.LoadedBytes)))
}
