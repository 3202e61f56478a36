package main

// The drill measurement (-drill): what binarc drill costs on top of the
// restore it runs, on the same archive: binarc restore --datadir against
// binarc drill --replica, alternating, drillRuns each. The difference is
// the drill's overhead (starting the temporary server again, summing the
// restored tables, pausing the replica and summing its tables); the
// compare phase per GiB of table data is the figure that grows with the
// cluster, and the replica's pause what the live cluster pays.

import (
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/drill"
	"github.com/binarc/binarc/internal/testenv"
)

var (
	drillOnly = flag.Bool("drill", false, "measure only binarc drill against the plain restore it runs (and the replica's pause), skipping the other phases")
	drillMiB  = flag.Int("drill-mb", 400, "table data for -drill, in MiB (-quick: 40)")
)

const (
	drillRuns    = 3
	drillCluster = "bench-drill"
)

// drillRun is one timed restore or drill.
type drillRun struct {
	Seconds float64 `json:"seconds"`
	// Drills only: the compare phase, the replica's pause, the outcome.
	CompareSeconds float64 `json:"compare_seconds,omitempty"`
	PauseSeconds   float64 `json:"replica_pause_seconds,omitempty"`
	Outcome        string  `json:"outcome,omitempty"`
}

// DrillResults is the drill measurement.
type DrillResults struct {
	DataMiB          int        `json:"data_mib"`
	TableBytes       int64      `json:"table_bytes"`
	Restores         []drillRun `json:"restores"`
	Drills           []drillRun `json:"drills"`
	Restore          drillRun   `json:"restore_median"`
	Drill            drillRun   `json:"drill_median"`
	OverheadSeconds  float64    `json:"overhead_seconds"`
	CompareSecPerGiB float64    `json:"compare_seconds_per_gib"`
}

// drillBench is the bench phase.
func (b *bench) drillBench() error {
	size := *drillMiB
	if b.opts.quick && !flagSet("drill-mb") {
		size = 40
	}
	replica, err := b.drillArchive(size)
	if err != nil {
		return err
	}
	res := &DrillResults{DataMiB: size}
	rows, err := b.db.Query(b.ctx, "SELECT SUM(data_length + index_length) FROM information_schema.tables WHERE table_schema = 'app'")
	if err != nil {
		return err
	}
	fmt.Sscan(rows[0][0], &res.TableBytes)
	dir := filepath.Join(b.tmp, "drill")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if err := testenv.OpenToOthers(dir); err != nil {
		return err
	}
	for i := range drillRuns {
		r, err := b.plainRestore(dir, i)
		if err != nil {
			return err
		}
		res.Restores = append(res.Restores, r)
		d, err := b.timedDrill(dir, i, replica)
		if err != nil {
			return err
		}
		res.Drills = append(res.Drills, d)
		logf("  restore %.1f s; drill %.1f s (compare %.1f s, replica paused %.2f s, %s)", r.Seconds, d.Seconds, d.CompareSeconds, d.PauseSeconds, d.Outcome)
	}
	res.Restore = medianBy(res.Restores, func(r drillRun) float64 { return r.Seconds })
	res.Drill = medianBy(res.Drills, func(r drillRun) float64 { return r.Seconds })
	res.OverheadSeconds = res.Drill.Seconds - res.Restore.Seconds
	res.CompareSecPerGiB = res.Drill.CompareSeconds / (float64(res.TableBytes) / (1 << 30))
	res.writeMarkdown(os.Stdout)
	return saveJSON(b.resultsPath("drill"), res)
}

// drillArchive writes size MiB of table data on the primary (binlogged),
// starts a replica and binarc stream, takes a snapshot of the replica,
// writes a little more, and stops the stream once it has everything.
func (b *bench) drillArchive(size int) (*testenv.MariaDB, error) {
	logf("drill: writing %d MiB of table data on the primary", size)
	if err := drillData(b, size); err != nil {
		return nil, err
	}
	replica, err := testenv.LaunchReplica(b.ctx, filepath.Join(b.tmp, "drill-replica"), b.db, testenv.ReplicaOptions{ServerID: 2})
	if err != nil {
		return nil, err
	}
	b.cl.add(func() { replica.Close() })
	binLog := filepath.Join(b.tmp, "drill-stream.log")
	started := time.Now()
	bin, err := startBinarc(b.binarc, drillCluster, nil, b.db, b.s3, b.replPass, binLog)
	if err != nil {
		return nil, err
	}
	b.cl.add(bin.Kill)
	defer bin.Stop(syscall.SIGTERM, time.Minute)
	if err := waitGTID(b, replica, time.Minute); err != nil {
		return nil, err
	}
	if _, err := b.binarcCmd("snapshot", "--source", "mysql://root@"+replica.Addr()); err != nil {
		return nil, err
	}
	if err := b.db.Exec(b.ctx, "UPDATE app.drill_bulk SET doc = CONCAT('after the snapshot ', doc) WHERE id <= 1000"); err != nil {
		return nil, err
	}
	if err := waitGTID(b, replica, time.Minute); err != nil {
		return nil, err
	}
	files, err := settledBinaryLogs(b.ctx, b.db)
	if err != nil {
		return nil, err
	}
	watch, err := newArchiveWatch(b.ctx, b.s3, s3Prefix, drillCluster)
	if err != nil {
		return nil, err
	}
	died := streamExited("binarc stream", bin, binLog)
	if _, err := watch.waitArchived(b.ctx, files, started, 10*time.Minute, died); err != nil {
		return nil, fmt.Errorf("drill: archiving: %w", err)
	}
	return replica, nil
}

// drillData fills app.drill_bulk like snapshotData, but binlogged: the
// replica and the archive get it.
func drillData(b *bench, size int) error {
	stmts := []string{
		"CREATE DATABASE IF NOT EXISTS app",
		"CREATE TABLE app.drill_bulk (id INT PRIMARY KEY, doc TEXT NOT NULL, blob_ VARBINARY(512) NOT NULL) ENGINE=InnoDB",
		"CREATE TABLE app.drill_small (id INT PRIMARY KEY, v INT) ENGINE=InnoDB",
		"INSERT INTO app.drill_small SELECT seq, seq * 7 FROM app.seq_1_to_1000",
	}
	stmts = append(stmts, bulkInserts("app.drill_bulk", size)...)
	return b.db.Exec(b.ctx, stmts...)
}

// waitGTID waits until the replica has applied the primary's GTID position.
func waitGTID(b *bench, replica *testenv.MariaDB, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		p, err := b.db.Query(b.ctx, "SELECT @@gtid_binlog_pos")
		if err != nil {
			return err
		}
		r, err := replica.Query(b.ctx, "SELECT @@gtid_slave_pos")
		if err != nil {
			return err
		}
		if p[0][0] == r[0][0] {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("replica at %s, primary at %s after %s", r[0][0], p[0][0], timeout)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// binarcCmd runs binarc on the drill's archive and returns its stdout.
func (b *bench) binarcCmd(args ...string) (string, error) {
	cmd := exec.CommandContext(b.ctx, b.binarc, append(args, "--store", "s3://"+b.s3.Bucket+"/"+s3Prefix, "--cluster", drillCluster)...)
	cmd.Env = append(append(noBinarcEnv(), b.s3.Env()...), "BINARC_SOURCE_PASSWORD=", "BINARC_REPLICA_PASSWORD=", "BINARC_LOG_FORMAT=json")
	var out, errs strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errs
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("binarc %s: %w\n%s", args[0], err, tailString(errs.String(), 3000))
	}
	return out.String(), nil
}

func tailString(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}

// plainRestore times binarc restore --datadir of the newest snapshot to
// the archive's end.
func (b *bench) plainRestore(dir string, i int) (drillRun, error) {
	target := filepath.Join(dir, fmt.Sprintf("restore-%d", i))
	started := time.Now()
	_, err := b.binarcCmd("restore", "--datadir", target, "--to", "latest")
	r := drillRun{Seconds: time.Since(started).Seconds()}
	os.RemoveAll(target)
	return r, err
}

// timedDrill times binarc drill --replica and reads its record.
func (b *bench) timedDrill(dir string, i int, replica *testenv.MariaDB) (drillRun, error) {
	started := time.Now()
	_, err := b.binarcCmd("drill", "--replica", "mysql://root@"+replica.Addr(), "--scratch-dir", dir)
	r := drillRun{Seconds: time.Since(started).Seconds()}
	if err != nil {
		return r, err
	}
	store, err := b.s3.OpenStore(b.ctx, "s3://"+b.s3.Bucket+"/"+s3Prefix)
	if err != nil {
		return r, err
	}
	rep, err := drill.Last(b.ctx, store, archive.Layout{Cluster: drillCluster})
	if err != nil || rep == nil {
		return r, fmt.Errorf("drill %d: no record (%v)", i, err)
	}
	for _, p := range rep.Phases {
		if p.Name == "compare" {
			r.CompareSeconds = p.Seconds
		}
	}
	r.PauseSeconds, r.Outcome = rep.ReplicaPauseSeconds, rep.Outcome()
	return r, nil
}

func (d *DrillResults) writeMarkdown(w io.Writer) {
	fmt.Fprintf(w, "\nDrill: %d MiB of table data (%s in InnoDB), median of %d runs each, alternating.\n\n", d.DataMiB, mib(uint64(d.TableBytes)), drillRuns)
	rows := [][]string{
		{"Metric", "Value"},
		{"binarc restore --datadir (newest snapshot + binlog)", fmt.Sprintf("%.1f s", d.Restore.Seconds)},
		{"binarc drill --replica (the same restore, then compare)", fmt.Sprintf("%.1f s (%s)", d.Drill.Seconds, d.Drill.Outcome)},
		{"drill overhead over the restore", fmt.Sprintf("%.1f s", d.OverheadSeconds)},
		{"compare phase", fmt.Sprintf("%.1f s, %.1f s per GiB of table data", d.Drill.CompareSeconds, d.CompareSecPerGiB)},
		{"replica paused (SQL thread)", fmt.Sprintf("%.2f s", d.Drill.PauseSeconds)},
	}
	writeTable(w, rows)
}
