package main

import (
	"bufio"
	"cmp"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/binarc/binarc/internal/testenv"
)

// restoreAndBackup runs the phases after the stream. replay restores the
// archive with binarc restore into fresh servers and, for reference,
// replays copies of the primary's binlog files with mariadb-binlog |
// mariadb into others, alternating; backupReplica then makes the last
// restored server a replica of the primary and backs it up with binarc
// snapshot and, for reference, with mariabackup | zstd to local disk.
type restoreAndBackup struct {
	*bench
	restored *testenv.MariaDB // filled by binarc restore, then the replica
}

// replayTimeout bounds each replay.
const replayTimeout = 10 * time.Minute

// replayOrder is who replays, in turn, each into a fresh empty server:
// binarc restore (true) or the plain pipe (false). Consecutive replays on
// this machine differ by up to a quarter with nothing else running, so each
// side runs three times, in an order where neither always goes first, and
// the median counts. -quick runs each once.
var (
	replayOrder      = []bool{false, true, true, false, false, true}
	replayOrderQuick = []bool{false, true}
)

// replayResults is the replay measurement.
type replayResults struct {
	Files       int    `json:"files"`
	BinlogBytes uint64 `json:"binlog_bytes"`
	// Binarc and Plain are the median runs, by time.
	Binarc struct {
		restoreRun
		Runs []restoreRun `json:"runs"`
	} `json:"binarc_restore"`
	Plain struct {
		plainReplayRun
		Runs []plainReplayRun `json:"runs"`
	} `json:"plain_replay"`
	Ratio float64 `json:"ratio_binarc_to_plain"`
	// Tables is how many tables were checksummed on the primary and on
	// every target; ChecksumDiff lists any that differ.
	Tables         int      `json:"tables_checked"`
	ChecksumsEqual bool     `json:"checksums_equal"`
	ChecksumDiff   []string `json:"checksum_diff,omitempty"`
}

// restoreRun is one binarc restore.
type restoreRun struct {
	Seconds float64 `json:"seconds"`
	MiBps   float64 `json:"mib_per_second"`
	// FetchSeconds is from the start until binarc printed its plan:
	// every segment fetched, checked and rebuilt, nothing replayed.
	FetchSeconds float64 `json:"fetch_check_seconds"`
	// CPUSeconds is binarc with the mariadb-binlog and mariadb it ran;
	// ChildCPU splits out the children.
	CPUSeconds       float64            `json:"cpu_seconds"`
	ChildCPU         map[string]float64 `json:"children_cpu_seconds"`
	TargetCPUSeconds float64            `json:"target_mariadbd_cpu_seconds"`
	S3CPUSeconds     float64            `json:"s3_cpu_seconds"`
	// OtherCPUSeconds is what the rest of the machine used meanwhile.
	OtherCPUSeconds float64 `json:"other_cpu_seconds"`
	// PeakRSSMiB is the largest peak RSS of binarc and the programs it
	// ran (ru_maxrss): binarc's, they are small.
	PeakRSSMiB float64 `json:"peak_rss_mib"`
}

// plainReplayRun is one mariadb-binlog | mariadb.
type plainReplayRun struct {
	Seconds          float64 `json:"seconds"`
	MiBps            float64 `json:"mib_per_second"`
	BinlogCPUSeconds float64 `json:"mariadb_binlog_cpu_seconds"`
	ClientCPUSeconds float64 `json:"mariadb_cpu_seconds"`
	TargetCPUSeconds float64 `json:"target_mariadbd_cpu_seconds"`
	OtherCPUSeconds  float64 `json:"other_cpu_seconds"`
}

const targetReplayRatio = 1.0

// replay measures restore throughput over the primary's whole binlog: the
// backlog and the steady load, which the archive holds in full once binarc
// has stopped. The server of the last binarc restore is kept for
// backupReplica.
func (rb *restoreAndBackup) replay() error {
	files, err := settledBinaryLogs(rb.ctx, rb.db)
	if err != nil {
		return err
	}
	noExit := func() error { return nil }
	if _, err := rb.watch.waitArchived(rb.ctx, files, time.Now(), 30*time.Second, noExit); err != nil {
		return fmt.Errorf("before the replay: the stopped binarc did not leave the whole binlog in the archive: %w", err)
	}
	res := &rb.r.Replay
	res.Files, res.BinlogBytes = len(files), totalSize(files)
	binlogMiB := float64(res.BinlogBytes) / mebi
	want, err := tableChecksums(rb.ctx, rb.db)
	if err != nil {
		return err
	}
	res.Tables = len(want)
	copyDir := filepath.Join(rb.tmp, "binlog-copy")
	paths, err := copyBinlogs(rb.db.DataDir, copyDir, files)
	if err != nil {
		return err
	}
	defer os.RemoveAll(copyDir)

	order := replayOrder
	if rb.opts.quick {
		order = replayOrderQuick
	}
	lastRestore := -1 // the last binarc restore's server is kept
	for i, useBinarc := range order {
		if useBinarc {
			lastRestore = i
		}
	}
	logf("replay: %s in %d files, %d times each way", mib(res.BinlogBytes), len(files), len(order)/2)
	for i, useBinarc := range order {
		target, err := startEmptyMariaDB(rb.ctx, rb.tmp, fmt.Sprintf("replay-%d", i), uint32(2+i), rb.cl)
		if err != nil {
			return err
		}
		// Start each replay with no dirty page cache left by the one
		// before (or by the copies), whose writeback would slow its
		// commits' fsyncs.
		syscall.Sync()
		name := "mariadb-binlog | mariadb"
		if useBinarc {
			name = "binarc restore"
			run, err := rb.binarcRestore(files[0].Name, target)
			if err != nil {
				return err
			}
			run.MiBps = binlogMiB / run.Seconds
			res.Binarc.Runs = append(res.Binarc.Runs, run)
			logf("  binarc restore:           %.2f s (%.2f s to fetch and check), %.1f MiB/s", run.Seconds, run.FetchSeconds, run.MiBps)
		} else {
			run, err := rb.plainReplay(paths, target)
			if err != nil {
				return err
			}
			run.MiBps = binlogMiB / run.Seconds
			res.Plain.Runs = append(res.Plain.Runs, run)
			logf("  mariadb-binlog | mariadb: %.2f s, %.1f MiB/s", run.Seconds, run.MiBps)
		}
		got, err := tableChecksums(rb.ctx, target)
		if err != nil {
			return err
		}
		for _, d := range checksumDiff(want, got) {
			res.ChecksumDiff = append(res.ChecksumDiff, fmt.Sprintf("%s (run %d): %s", name, i+1, d))
		}
		if i == lastRestore {
			rb.restored = target // becomes the replica
		} else {
			target.Close()
			os.RemoveAll(target.DataDir)
		}
	}
	res.Binarc.restoreRun = medianBy(res.Binarc.Runs, func(r restoreRun) float64 { return r.Seconds })
	res.Plain.plainReplayRun = medianBy(res.Plain.Runs, func(r plainReplayRun) float64 { return r.Seconds })
	res.Ratio = res.Binarc.MiBps / res.Plain.MiBps
	res.ChecksumsEqual = len(res.ChecksumDiff) == 0
	logf("replay: ratio %.2f; CHECKSUM TABLE of %d tables equal to the primary's on every target: %v %s",
		res.Ratio, res.Tables, res.ChecksumsEqual, strings.Join(res.ChecksumDiff, ", "))
	return nil
}

// medianBy returns the run with the median key (the upper one of an even
// count).
func medianBy[T any](runs []T, key func(T) float64) T {
	s := slices.Clone(runs)
	slices.SortFunc(s, func(a, b T) int { return cmp.Compare(key(a), key(b)) })
	return s[len(s)/2]
}

// copyBinlogs copies the primary's binlog files into dir, for the plain
// replay to read the way binarc restore reads its rebuilt files.
func copyBinlogs(dataDir, dir string, files []binlogFile) ([]string, error) {
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, err
	}
	var paths []string
	for _, f := range files {
		dst := filepath.Join(dir, f.Name)
		if err := copyFile(filepath.Join(dataDir, f.Name), dst); err != nil {
			return nil, err
		}
		paths = append(paths, dst)
	}
	return paths, nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// binarcRestore times binarc restore --from FIRST:4 --to latest into
// target, and the moment it prints its plan (fetch and check done, replay
// starting).
func (rb *restoreAndBackup) binarcRestore(first string, target *testenv.MariaDB) (restoreRun, error) {
	var res restoreRun
	logPath := filepath.Join(rb.tmp, "binarc-restore.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return res, err
	}
	defer logFile.Close()
	work := filepath.Join(rb.tmp, "restore-tmp")
	if err := os.Mkdir(work, 0o755); err != nil {
		return res, err
	}
	defer os.RemoveAll(work)
	cmd := exec.Command(rb.binarc, "restore",
		"--store", "s3://"+rb.s3.Bucket+"/"+s3Prefix, "--cluster", cluster,
		"--from", first+":4", "--to", "latest",
		"--target", "mysql://root@"+target.Addr())
	// The fetched files go to binarc's default temporary directory, here
	// under the bench's.
	cmd.Env = append(append(cleanEnv(), rb.s3.Env()...), "TMPDIR="+work, "BINARC_LOG_FORMAT=json")
	// A pipe of our own rather than StdoutPipe: startChild's Wait would
	// close that one under the reader.
	pr, pw, err := os.Pipe()
	if err != nil {
		return res, err
	}
	defer pr.Close()
	cmd.Stdout, cmd.Stderr = pw, logFile
	meter := newCPUMeter(map[string]int{"target": target.Pid(), "versitygw": rb.s3.Pid()})
	machine := newMachineMeter()
	started := time.Now()
	p, err := testenv.StartProcess("binarc restore", cmd)
	pw.Close()
	if err != nil {
		return res, err
	}
	rb.cl.add(p.Kill)
	tree := watchTreeCPU(p.Pid(), 100*time.Millisecond)
	var planned time.Time
	read := make(chan struct{})
	go func() {
		defer close(read)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if planned.IsZero() && strings.HasPrefix(sc.Text(), "restore plan") {
				planned = time.Now()
			}
			fmt.Fprintln(logFile, sc.Text())
		}
	}()
	err = waitChild(rb.ctx, p, replayTimeout)
	res.Seconds = time.Since(started).Seconds()
	res.ChildCPU = tree.finish()
	if err != nil {
		return res, fmt.Errorf("binarc restore: %w\n%s", err, testenv.TailFile(logPath, 20))
	}
	<-read // the pipe ends with binarc
	if !planned.IsZero() {
		res.FetchSeconds = planned.Sub(started).Seconds()
	}
	used := meter.used()
	res.CPUSeconds = rusageSeconds(cmd.ProcessState)
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		res.PeakRSSMiB = float64(ru.Maxrss) / 1024 // KiB on Linux
	}
	res.TargetCPUSeconds, res.S3CPUSeconds = used["target"], used["versitygw"]
	res.OtherCPUSeconds = machine.otherSeconds()
	return res, nil
}

// plainReplay times mariadb-binlog FILES | mariadb --binary-mode into
// target, the two connected by a pipe as a shell would.
func (rb *restoreAndBackup) plainReplay(paths []string, target *testenv.MariaDB) (plainReplayRun, error) {
	var res plainReplayRun
	binlogBin, err := testenv.BinaryPath("mariadb-binlog", "mysqlbinlog")
	if err != nil {
		return res, err
	}
	clientBin, err := testenv.BinaryPath("mariadb", "mysql")
	if err != nil {
		return res, err
	}
	decode := exec.Command(binlogBin, append([]string{"--no-defaults"}, paths...)...)
	apply := exec.Command(clientBin, "--no-defaults", "--binary-mode", "--max-allowed-packet=1G",
		"-h127.0.0.1", "-P"+strconv.Itoa(target.Port), "-uroot")
	var decodeErr, applyErr strings.Builder
	decode.Stderr, apply.Stderr, apply.Stdout = &decodeErr, &applyErr, io.Discard
	meter := newCPUMeter(map[string]int{"target": target.Pid()})
	machine := newMachineMeter()
	started := time.Now()
	if err := rb.runPipe(piped{"mariadb-binlog", decode, decodeErr.String}, piped{"mariadb", apply, applyErr.String}, replayTimeout); err != nil {
		return res, err
	}
	res.Seconds = time.Since(started).Seconds()
	res.BinlogCPUSeconds = rusageSeconds(decode.ProcessState)
	res.ClientCPUSeconds = rusageSeconds(apply.ProcessState)
	res.TargetCPUSeconds = meter.used()["target"]
	res.OtherCPUSeconds = machine.otherSeconds()
	return res, nil
}

func (r *replayResults) rows() [][]string {
	b, p := &r.Binarc, &r.Plain
	child := func(name string) float64 { return b.ChildCPU[name] }
	own := b.CPUSeconds - child("mariadb-binlog") - child("mariadb")
	var bs, ps []string
	for _, run := range b.Runs {
		bs = append(bs, fmt.Sprintf("%.1f", run.MiBps))
	}
	for _, run := range p.Runs {
		ps = append(ps, fmt.Sprintf("%.1f", run.MiBps))
	}
	equal := fmt.Sprintf("yes: %d tables equal to the primary's on all %d targets", r.Tables, len(b.Runs)+len(p.Runs))
	if !r.ChecksumsEqual {
		equal = "NO: " + strings.Join(r.ChecksumDiff, "; ")
	}
	return [][]string{
		{fmt.Sprintf("binarc restore --to latest into an empty server (%s)", runsLabel(len(b.Runs))), fmt.Sprintf("%.1f MiB/s (%.2f s for %s in %d files: %.2f s fetch + check, %.2f s replay; CPU-s: binarc %.2f, mariadb-binlog %.2f, mariadb %.2f, target mariadbd %.2f, versitygw %.2f; other processes %.2f; binarc peak RSS %.0f MiB; runs %s MiB/s)",
			b.MiBps, b.Seconds, mib(r.BinlogBytes), r.Files, b.FetchSeconds, b.Seconds-b.FetchSeconds, own, child("mariadb-binlog"), child("mariadb"), b.TargetCPUSeconds, b.S3CPUSeconds, b.OtherCPUSeconds, b.PeakRSSMiB, strings.Join(bs, ", ")), "", ""},
		{fmt.Sprintf("mariadb-binlog \\| mariadb of local copies (%s)", runsLabel(len(p.Runs))), fmt.Sprintf("%.1f MiB/s (%.2f s; CPU-s: mariadb-binlog %.2f, mariadb %.2f, target mariadbd %.2f; other processes %.2f; runs %s MiB/s)",
			p.MiBps, p.Seconds, p.BinlogCPUSeconds, p.ClientCPUSeconds, p.TargetCPUSeconds, p.OtherCPUSeconds, strings.Join(ps, ", ")), "", ""},
		{"ratio binarc restore / plain replay", fmt.Sprintf("%.2f", r.Ratio), fmt.Sprintf(">= %.1f", targetReplayRatio), pass(r.Ratio >= targetReplayRatio)},
		{"replay targets (CHECKSUM TABLE)", equal, "equal", pass(r.ChecksumsEqual)},
	}
}

func (r *replayResults) method(w io.Writer) {
	fmt.Fprintln(w, "Replay: each run into a fresh empty MariaDB (no binlog, the primary's InnoDB settings), alternating: binarc restore --from FIRST:4 --to latest --target (fetch from S3, check, replay; the whole command timed)"+
		" against mariadb-binlog FILES | mariadb --binary-mode on copies of the primary's binlog files; then CHECKSUM TABLE of every non-system table on the primary and each target.")
}
