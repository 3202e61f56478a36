package main

import (
	"cmp"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/binarc/binarc/internal/testenv"
)

// Snapshot throughput: binarc snapshot of the bench's MariaDB into S3,
// against what an operator runs by hand to local disk,
//
//	mariabackup --backup --stream=xbstream | zstd > file
//
// on the same data, alternating the two, median of snapshotRuns each.
// binarc runs with --allow-primary (the bench has no replica; the tool's
// work is the same, and binarc then also scans the stream for the binlog
// coordinates, so this is the slower path).
var (
	snapshotOnly = flag.Bool("snapshot", false, "measure only snapshot throughput (binarc snapshot to S3 vs mariabackup | zstd to local disk), skipping the stream phases")
	snapshotMiB  = flag.Int("snapshot-mb", 1024, "table data to back up in the snapshot measurement, in MiB (-quick: 200)")
)

const (
	snapshotRuns        = 3
	targetSnapshotRatio = 0.8
	snapshotCluster     = "bench-snapshot"
)

// snapshotRun is one timed backup.
type snapshotRun struct {
	Seconds     float64 `json:"seconds"`
	RawBytes    int64   `json:"raw_bytes"`
	StoredBytes int64   `json:"stored_bytes"`
	MiBps       float64 `json:"raw_mib_per_second"`
	// CPUSeconds counts the whole pipeline: the shell, mariabackup and
	// zstd, or binarc and mariabackup (rusage of the process and the
	// children it waited for).
	CPUSeconds float64 `json:"cpu_seconds"`
	// UploadTailSeconds (binarc only) is the part of Seconds after the
	// backup tool exited.
	UploadTailSeconds float64 `json:"upload_tail_seconds,omitempty"`
	// S3CPUSeconds (binarc only) is versitygw's CPU time during the run:
	// the S3 server shares the machine, where the baseline writes a file.
	S3CPUSeconds float64 `json:"s3_cpu_seconds,omitempty"`
}

// SnapshotResults is the snapshot measurement, written as JSON beside the
// stream results and printed as its own table.
type SnapshotResults struct {
	DataMiB       int           `json:"data_mib"`
	DatadirBytes  int64         `json:"datadir_bytes"`
	GenSeconds    float64       `json:"generate_seconds"`
	Baseline      snapshotRun   `json:"baseline_median"`
	BaselineRuns  []snapshotRun `json:"baseline_runs"`
	Binarc        snapshotRun   `json:"binarc_median"`
	BinarcRuns    []snapshotRun `json:"binarc_runs"`
	Ratio         float64       `json:"ratio_binarc_to_baseline"`
	BinarcVersion string        `json:"binarc_revision"`
}

// snapshot is the bench phase.
func (b *bench) snapshot() error {
	size := *snapshotMiB
	if b.opts.quick && !flagSet("snapshot-mb") {
		size = 200
	}
	if size < 1 {
		return fmt.Errorf("-snapshot-mb must be positive")
	}
	res := &SnapshotResults{DataMiB: size, BinarcVersion: b.r.Config.BinarcRevision}
	logf("snapshot: writing %d MiB of table data (not binlogged)", size)
	t0 := time.Now()
	if err := snapshotData(b, size); err != nil {
		return err
	}
	res.GenSeconds = time.Since(t0).Seconds()
	res.DatadirBytes = dirSize(b.db.DataDir)

	dir := filepath.Join(b.tmp, "snapshot")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	cnf := filepath.Join(dir, "client.cnf")
	if err := os.WriteFile(cnf, []byte(fmt.Sprintf("[client]\nuser=root\npassword=\"\"\nhost=127.0.0.1\nport=%d\nprotocol=tcp\n", b.db.Port)), 0o600); err != nil {
		return err
	}
	for i := range snapshotRuns {
		base, err := baselineBackup(b, dir, cnf, i)
		if err != nil {
			return err
		}
		logf("  mariabackup | zstd > file: %.2f s, %.1f MiB/s raw (%.2f CPU-s)", base.Seconds, base.MiBps, base.CPUSeconds)
		res.BaselineRuns = append(res.BaselineRuns, base)
		run, err := binarcSnapshot(b, dir, i)
		if err != nil {
			return err
		}
		logf("  binarc snapshot to S3:     %.2f s, %.1f MiB/s raw (%.2f s of it after mariabackup exited; %.2f CPU-s, versitygw %.2f CPU-s)", run.Seconds, run.MiBps, run.UploadTailSeconds, run.CPUSeconds, run.S3CPUSeconds)
		res.BinarcRuns = append(res.BinarcRuns, run)
	}
	res.Baseline, res.Binarc = medianRun(res.BaselineRuns), medianRun(res.BinarcRuns)
	res.Ratio = res.Binarc.MiBps / res.Baseline.MiBps
	logf("snapshot: ratio %.2f (target >= %.1f)", res.Ratio, targetSnapshotRatio)
	res.writeMarkdown(os.Stdout)
	return saveJSON(b.resultsPath("snapshot"), res)
}

func flagSet(name string) bool {
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// snapshotData fills a table with size MiB: rows of text (compressible,
// like most tables) and random bytes (like compressed or encrypted
// columns), about 3:1 compressible overall. It is not binlogged, so a
// running binarc stream does not compete with the backups.
func snapshotData(b *bench, size int) error {
	stmts := []string{
		"SET SESSION sql_log_bin = 0",
		"CREATE DATABASE IF NOT EXISTS app",
		"CREATE TABLE app.snapshot_bulk (id INT PRIMARY KEY, doc TEXT NOT NULL, blob_ VARBINARY(512) NOT NULL) ENGINE=InnoDB",
	}
	stmts = append(stmts, bulkInserts("app.snapshot_bulk", size)...)
	return b.db.Exec(b.ctx, stmts...)
}

// bulkInserts are the INSERTs that fill table (id, doc, blob_) with size
// MiB, 4096 rows of the sequence engine (app.seq_LO_to_HI) a statement.
func bulkInserts(table string, size int) []string {
	var stmts []string
	// A row is about 1.5 KiB (1 KiB of text, 512 random bytes); 4096 rows
	// a statement.
	rows := size * 1024 * 2 / 3
	for lo := 0; lo < rows; lo += 4096 {
		stmts = append(stmts, fmt.Sprintf("INSERT INTO %s SELECT seq, REPEAT(CONCAT(MD5(seq), ' ', 'lorem ipsum dolor '), 20), RANDOM_BYTES(512) FROM app.seq_%d_to_%d", table, lo+1, min(lo+4096, rows)))
	}
	return stmts
}

// baselineBackup runs mariabackup | zstd > file, as an operator would.
func baselineBackup(b *bench, dir, cnf string, i int) (snapshotRun, error) {
	mariabackup, err := testenv.BinaryPath("mariabackup")
	if err != nil {
		return snapshotRun{}, err
	}
	target := filepath.Join(dir, fmt.Sprintf("target-%d", i))
	out := filepath.Join(dir, fmt.Sprintf("backup-%d.xbstream.zst", i))
	raw := filepath.Join(dir, fmt.Sprintf("raw-%d", i))
	// wc -c counts the raw stream without storing it.
	script := fmt.Sprintf("set -o pipefail; %s --defaults-extra-file=%s --backup --stream=xbstream --target-dir=%s --datadir=%s 2>%s/baseline-%d.log | tee >(wc -c > %s) | zstd -q -c > %s",
		mariabackup, cnf, target, b.db.DataDir, dir, i, raw, out)
	cmd := exec.CommandContext(b.ctx, "bash", "-c", script)
	started := time.Now()
	if outp, err := cmd.CombinedOutput(); err != nil {
		return snapshotRun{}, fmt.Errorf("mariabackup | zstd: %w\n%s\n%s", err, outp, testenv.TailFile(filepath.Join(dir, fmt.Sprintf("baseline-%d.log", i)), 20))
	}
	r := snapshotRun{Seconds: time.Since(started).Seconds(), CPUSeconds: cpuOf(cmd.ProcessState)}
	time.Sleep(100 * time.Millisecond) // the tee'd wc may finish just after
	var n int64
	if b, err := os.ReadFile(raw); err == nil {
		fmt.Sscan(string(b), &n)
	}
	fi, err := os.Stat(out)
	if err != nil {
		return r, err
	}
	r.RawBytes, r.StoredBytes = n, fi.Size()
	r.MiBps = float64(r.RawBytes) / mebi / r.Seconds
	os.Remove(out)
	os.RemoveAll(target)
	return r, nil
}

// binarcSnapshot runs binarc snapshot into the S3 server and reads the
// sizes from its manifest line.
func binarcSnapshot(b *bench, dir string, i int) (snapshotRun, error) {
	logPath := filepath.Join(dir, fmt.Sprintf("binarc-snapshot-%d.log", i))
	cmd := exec.CommandContext(b.ctx, b.binarc, "snapshot",
		"--source", "mysql://root@"+b.db.Addr(), "--allow-primary",
		"--store", "s3://"+b.s3.Bucket+"/"+s3Prefix, "--cluster", snapshotCluster)
	cmd.Env = append(append(noBinarcEnv(), b.s3.Env()...), "BINARC_SOURCE_PASSWORD=", "BINARC_LOG_FORMAT=json")
	var stdout strings.Builder
	logFile, err := os.Create(logPath)
	if err != nil {
		return snapshotRun{}, err
	}
	defer logFile.Close()
	cmd.Stdout, cmd.Stderr = io.MultiWriter(&stdout, logFile), logFile
	s3CPU, _ := cpuTime(b.s3.Pid())
	started := time.Now()
	if err := cmd.Run(); err != nil {
		return snapshotRun{}, fmt.Errorf("binarc snapshot: %w\n%s", err, testenv.TailFile(logPath, 20))
	}
	r := snapshotRun{Seconds: time.Since(started).Seconds(), CPUSeconds: cpuOf(cmd.ProcessState)}
	if after, err := cpuTime(b.s3.Pid()); err == nil {
		r.S3CPUSeconds = (after - s3CPU).Seconds()
	}
	// "snapshot ID complete: KEY, N bytes stored (M raw), at ..."
	line := stdout.String()
	_, rest, ok := strings.Cut(line, ", ")
	if !ok {
		return r, fmt.Errorf("binarc snapshot printed %q", line)
	}
	if _, err := fmt.Sscanf(rest, "%d bytes stored (%d raw)", &r.StoredBytes, &r.RawBytes); err != nil {
		return r, fmt.Errorf("binarc snapshot printed %q: %w", line, err)
	}
	r.MiBps = float64(r.RawBytes) / mebi / r.Seconds
	r.UploadTailSeconds = uploadTail(logPath)
	return r, nil
}

// uploadTail is the time from the backup tool's exit to the snapshot's
// completion, from binarc's log: the upload of what was still buffered,
// the multipart completion and the manifest.
func uploadTail(logPath string) float64 {
	data, err := os.ReadFile(logPath)
	if err != nil {
		return 0
	}
	var exited, done time.Time
	for _, line := range strings.Split(string(data), "\n") {
		var l struct {
			Message string    `json:"message"`
			Time    time.Time `json:"time"`
		}
		if json.Unmarshal([]byte(line), &l) != nil {
			continue
		}
		switch {
		case strings.HasPrefix(l.Message, "backup tool exited"):
			exited = l.Time
		case l.Message == "snapshot complete":
			done = l.Time
		}
	}
	if exited.IsZero() || done.IsZero() {
		return 0
	}
	return done.Sub(exited).Seconds()
}

func cpuOf(ps *os.ProcessState) float64 {
	if ps == nil {
		return 0
	}
	ru, ok := ps.SysUsage().(*syscall.Rusage)
	if !ok {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

func medianRun(runs []snapshotRun) snapshotRun {
	s := slices.Clone(runs)
	slices.SortFunc(s, func(a, b snapshotRun) int { return cmp.Compare(a.Seconds, b.Seconds) })
	return s[len(s)/2]
}

func dirSize(dir string) int64 {
	var n int64
	filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
		return nil
	})
	return n
}

func (s *SnapshotResults) writeMarkdown(w io.Writer) {
	fmt.Fprintf(w, "\nSnapshot: %d MiB of table data (datadir %s with binlogs), median of %d runs each, alternating.\n\n",
		s.DataMiB, mib(uint64(s.DatadirBytes)), snapshotRuns)
	rows := [][]string{
		{"Metric", "Value", "Target", "Met"},
		{"mariabackup --stream=xbstream \\| zstd > local file", fmt.Sprintf("%.1f MiB/s (%.2f s for %s raw, %s stored; %.2f CPU-s)",
			s.Baseline.MiBps, s.Baseline.Seconds, mib(uint64(s.Baseline.RawBytes)), mib(uint64(s.Baseline.StoredBytes)), s.Baseline.CPUSeconds), "", ""},
		{"binarc snapshot to S3 (multipart, manifest)", fmt.Sprintf("%.1f MiB/s (%.2f s for %s raw, %s stored; %.2f CPU-s, the S3 server %.2f CPU-s)",
			s.Binarc.MiBps, s.Binarc.Seconds, mib(uint64(s.Binarc.RawBytes)), mib(uint64(s.Binarc.StoredBytes)), s.Binarc.CPUSeconds, s.Binarc.S3CPUSeconds), "", ""},
		{"ratio binarc / local pipe", fmt.Sprintf("%.2f", s.Ratio), fmt.Sprintf(">= %.1f", targetSnapshotRatio), pass(s.Ratio >= targetSnapshotRatio)},
	}
	writeTable(w, rows)
}
