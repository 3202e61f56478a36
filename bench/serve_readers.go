package main

// The serve readers measurement (-serve-readers): how binarc serve holds
// up when many clients read the archive at once, as CDC tools replaying
// history do. The primary writes -serve-readers-mb of binlog (rotating),
// binarc stream archives it to S3, and binarc serve streams it from the
// start to one reader, then to -serve-readers-n readers at once, each a
// non-blocking COM_BINLOG_DUMP read as fast as the connection allows
// (until the EOF after the last event). Reported: total MiB/s and serve's
// peak RSS (VmHWM, a fresh serve per run), against the target of 200 MiB.

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/binarc/binarc/internal/procfs"
	"github.com/binarc/binarc/internal/testenv"
	"github.com/go-mysql-org/go-mysql/client"
	"github.com/go-mysql-org/go-mysql/mysql"
)

var (
	serveReadersOnly = flag.Bool("serve-readers", false, "measure only binarc serve with many concurrent readers against one, skipping the other phases")
	serveReadersMiB  = flag.Int("serve-readers-mb", 1024, "binlog archived for -serve-readers, in MiB")
	serveReadersN    = flag.Int("serve-readers-n", 50, "concurrent readers in -serve-readers")
)

// serveReadersTargetRSSMiB is the bound on serve's memory with 50
// readers.
const serveReadersTargetRSSMiB = 200

// readersRun is one timed run of concurrent dumps.
type readersRun struct {
	Readers    int
	Seconds    float64
	MiB        float64 // binlog bytes received by all readers
	PeakRSSMiB float64
}

// serveReaders runs the whole measurement and prints its table.
func (b *bench) serveReaders() error {
	ctx := b.ctx
	if err := b.startStream(); err != nil {
		return err
	}
	logf("serve readers: writing %d MiB of binlog", *serveReadersMiB)
	if err := b.writeBinlog(ctx, uint64(*serveReadersMiB)*mebi); err != nil {
		return err
	}
	files, err := settledBinaryLogs(ctx, b.db)
	if err != nil {
		return err
	}
	died := streamExited("binarc", b.bin, b.binLog)
	if _, err := b.watch.waitArchived(ctx, files, time.Now(), 20*time.Minute, died); err != nil {
		return err
	}
	// Both runs read the settled archive: every complete file compacted.
	if err := b.watch.waitCompacted(ctx, 10*time.Minute); err != nil {
		return err
	}
	var runs []readersRun
	for _, n := range []int{1, *serveReadersN} {
		r, err := b.readersRun(ctx, files[0].Name, n)
		if err != nil {
			return err
		}
		logf("  %3d readers: %.1f s, %.1f MiB/s in all, serve peak RSS %.0f MiB", n, r.Seconds, r.MiB/r.Seconds, r.PeakRSSMiB)
		runs = append(runs, r)
	}
	fmt.Printf("\n## binarc serve, concurrent readers from the start of %s of archive\n\n| readers | seconds | total MiB/s | MiB/s per reader | serve peak RSS | target |\n| --- | --- | --- | --- | --- | --- |\n", mib(totalSize(files)))
	for _, r := range runs {
		fmt.Printf("| %d | %.1f | %.1f | %.1f | %.0f MiB | <= %d MiB |\n", r.Readers, r.Seconds, r.MiB/r.Seconds, r.MiB/r.Seconds/float64(r.Readers), r.PeakRSSMiB, serveReadersTargetRSSMiB)
	}
	return nil
}

// writeBinlog fills the binlog with limit bytes of 1 KiB rows, in
// multi-row inserts of 1000.
func (b *bench) writeBinlog(ctx context.Context, limit uint64) error {
	if err := b.db.Exec(ctx, "CREATE DATABASE IF NOT EXISTS rd",
		"CREATE TABLE IF NOT EXISTS rd.t (id BIGINT AUTO_INCREMENT PRIMARY KEY, v VARBINARY(1024)) ENGINE=InnoDB"); err != nil {
		return err
	}
	conn, err := b.db.Dial(ctx)
	if err != nil {
		return err
	}
	defer testenv.Quit(conn)
	ins := "INSERT INTO rd.t (v) VALUES " + strings.TrimSuffix(strings.Repeat("(RANDOM_BYTES(1000)),", 1000), ",")
	for i := 0; ; i++ {
		if err := b.db.Exec(ctx, ins); err != nil {
			return err
		}
		if i%10 != 9 {
			continue
		}
		files, err := showBinaryLogs(conn)
		if err != nil {
			return err
		}
		if totalSize(files) >= limit {
			return nil
		}
	}
}

// readersRun starts a fresh binarc serve, has n readers dump the archive
// from file at once, and measures the time until the last is done and
// serve's peak RSS.
func (b *bench) readersRun(ctx context.Context, file string, n int) (readersRun, error) {
	r := readersRun{Readers: n}
	port, err := testenv.FreePort()
	if err != nil {
		return r, err
	}
	pass := "readers-" + testenv.RandomHex(8)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	logPath := filepath.Join(b.tmp, "serve-readers.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return r, err
	}
	defer logFile.Close()
	cmd := exec.Command(b.binarc, "serve", "--store", "s3://"+b.s3.Bucket+"/"+s3Prefix, "--cluster", cluster, "--listen", addr)
	cmd.Env = append(append(cleanEnv(), b.s3.Env()...), "BINARC_SERVE_PASSWORD="+pass, "BINARC_LOG_FORMAT=json", "BINARC_LOG_LEVEL=warn")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	p, err := testenv.StartProcess("binarc serve", cmd)
	if err != nil {
		return r, err
	}
	b.cl.add(p.Kill)
	defer p.Kill()
	if err := waitListening(ctx, addr, p); err != nil {
		return r, fmt.Errorf("binarc serve: %w\n%s", err, testenv.TailFile(logPath, 20))
	}
	started := time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var total uint64
	var firstErr error
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := dumpToEOF(addr, pass, file)
			mu.Lock()
			defer mu.Unlock()
			total += got
			if err != nil && firstErr == nil {
				firstErr = err
			}
		}()
	}
	wg.Wait()
	r.Seconds = time.Since(started).Seconds()
	if firstErr != nil {
		return r, fmt.Errorf("a reader of binarc serve: %w\n%s", firstErr, testenv.TailFile(logPath, 20))
	}
	hwm, err := procfs.StatusKB(p.Pid(), "VmHWM")
	if err != nil {
		return r, err
	}
	r.PeakRSSMiB, r.MiB = float64(hwm)/1024, float64(total)/mebi
	return r, nil
}

// waitListening waits until addr accepts connections or p exits.
func waitListening(ctx context.Context, addr string, p *testenv.Process) error {
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if c, err := net.Dial("tcp", addr); err == nil {
			return c.Close()
		}
		if p.Exited() {
			return fmt.Errorf("exited: %v", p.Err())
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("not listening on %s after a minute", addr)
}

// dumpToEOF reads a non-blocking COM_BINLOG_DUMP from the start of file
// to its EOF, as a CDC client replaying history does, and returns the
// event bytes received.
func dumpToEOF(addr, pass, file string) (uint64, error) {
	c, err := client.Connect(addr, "binarc", pass, "")
	if err != nil {
		return 0, err
	}
	defer c.Close()
	for _, q := range []string{"SET @master_binlog_checksum='NONE'", "SET @mariadb_slave_capability=4"} {
		if _, err := c.Execute(q); err != nil {
			return 0, err
		}
	}
	c.ResetSequence()
	// position 4, BINLOG_DUMP_NON_BLOCK, server id 0
	if err := c.WritePacket(append([]byte{0, 0, 0, 0, mysql.COM_BINLOG_DUMP, 4, 0, 0, 0, 1, 0, 0, 0, 0, 0}, file...)); err != nil {
		return 0, err
	}
	var got uint64
	for {
		pkt, err := c.ReadPacket()
		if err != nil {
			return got, err
		}
		if pkt[0] == mysql.EOF_HEADER && len(pkt) < 9 {
			return got, nil
		}
		got += uint64(len(pkt) - 1)
	}
}

// waitCompacted waits until every complete file of the newest timeline is
// stored as one compacted object, as an archive that has settled is.
func (w *archiveWatch) waitCompacted(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		left, err := w.uncompacted(ctx)
		if err != nil {
			return err
		}
		if left == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d complete files still not compacted after %s", left, timeout)
		}
		time.Sleep(time.Second)
	}
}

// uncompacted counts the complete files still stored in segments.
func (w *archiveWatch) uncompacted(ctx context.Context) (int, error) {
	if ok, err := w.findTimeline(ctx); !ok || err != nil {
		return 0, err
	}
	refs, err := w.cat.Files(ctx, w.timeline)
	if err != nil {
		return 0, err
	}
	left := 0
	for _, r := range refs {
		fs, err := w.cat.FileState(ctx, w.timeline, r)
		if err != nil {
			return 0, err
		}
		if fs.Complete && fs.CompactedKey == "" {
			left++
		}
	}
	return left, nil
}
