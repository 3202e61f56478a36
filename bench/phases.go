package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/binarc/binarc/internal/procfs"
	"github.com/binarc/binarc/internal/testenv"
)

// bench is one run: the servers, and what the phases hand each other.
type bench struct {
	ctx      context.Context
	opts     options
	cl       *cleanups
	tmp      string
	binarc   string
	db       *testenv.MariaDB
	s3       *testenv.S3Server
	replPass string
	r        *Results

	files      []binlogFile // the backlog, as SHOW BINARY LOGS listed it
	backlogMiB float64
	watch      *archiveWatch
	bin        *testenv.Process // binarc stream, from catchUp on
	binLog     string
	// stream is the cluster and extra flags catchUp starts binarc with:
	// the plain run's by default (catchUpEncrypted changes them).
	stream struct {
		cluster string
		args    []string
	}
	enc *streamRun // the encrypted binarc, with -encrypt
}

// backlog writes the binlog backlog before any reader starts.
func (b *bench) backlog() error {
	logf("writing a %d MiB binlog backlog", b.opts.backlogMiB)
	t0 := time.Now()
	if err := setupSchema(b.ctx, b.db); err != nil {
		return err
	}
	if err := generateBacklog(b.ctx, b.db, uint64(b.opts.backlogMiB)*mebi); err != nil {
		return err
	}
	b.r.Backlog.GenerateSeconds = time.Since(t0).Seconds()
	var err error
	if b.files, err = settledBinaryLogs(b.ctx, b.db); err != nil {
		return err
	}
	b.r.Backlog.Files = b.files
	b.r.Backlog.Bytes = totalSize(b.files)
	b.backlogMiB = float64(b.r.Backlog.Bytes) / mebi
	logf("backlog: %s in %d files, written in %.1f s", mib(b.r.Backlog.Bytes), len(b.files), b.r.Backlog.GenerateSeconds)
	return nil
}

const mariadbBinlogRuns = 3

// mariadbBinlog times mariadb-binlog copying the backlog to local disk. Its
// time depends on how fast the kernel hands out page cache (it is nearly
// all system time), which varies from run to run: the median of three
// counts.
func (b *bench) mariadbBinlog() error {
	logf("mariadb-binlog --read-from-remote-server --raw, %d runs", mariadbBinlogRuns)
	var runs []mariadbBinlogRun
	for i := range mariadbBinlogRuns {
		meter := newCPUMeter(map[string]int{"mariadbd": b.db.Pid()})
		run, err := runMariadbBinlog(b.ctx, b.db, b.replPass, b.files, filepath.Join(b.tmp, fmt.Sprintf("mariadb-binlog-%d", i)), b.cl)
		if err != nil {
			return err
		}
		run.ServerCPUSeconds = meter.used()["mariadbd"]
		run.MiBps = b.backlogMiB / run.Seconds
		runs = append(runs, run)
		logf("  mariadb-binlog: %.2f s, %.1f MiB/s", run.Seconds, run.MiBps)
	}
	b.r.MariadbBinlog.Runs = slices.Clone(runs)
	slices.SortFunc(runs, func(x, y mariadbBinlogRun) int { return cmp.Compare(x.Seconds, y.Seconds) })
	b.r.MariadbBinlog.mariadbBinlogRun = runs[len(runs)/2]
	return nil
}

// runMariadbBinlog copies every binlog file from the first one on into dir
// with mariadb-binlog --raw, checks every file arrived whole, and removes
// the copy. Without --stop-never mariadb-binlog asks for a non-blocking
// dump, so it exits at the end of the last file.
func runMariadbBinlog(ctx context.Context, db *testenv.MariaDB, pass string, files []binlogFile, dir string, cl *cleanups) (mariadbBinlogRun, error) {
	var run mariadbBinlogRun
	bin, err := testenv.BinaryPath("mariadb-binlog", "mysqlbinlog")
	if err != nil {
		return run, err
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		return run, err
	}
	defer os.RemoveAll(dir)
	var stderr strings.Builder
	cmd := exec.Command(bin, "--no-defaults", "--read-from-remote-server", "--raw",
		"--host=127.0.0.1", fmt.Sprintf("--port=%d", db.Port), "--user="+replUser, "--password="+pass,
		"--result-file="+dir+"/", "--to-last-log", files[0].Name)
	cmd.Stderr = &stderr
	start := time.Now()
	p, err := testenv.StartProcess("mariadb-binlog", cmd)
	if err != nil {
		return run, err
	}
	cl.add(p.Kill)
	select {
	case <-p.Done():
	case <-ctx.Done():
		p.Kill()
		return run, ctx.Err()
	case <-time.After(10 * time.Minute):
		p.Kill()
		return run, errors.New("mariadb-binlog still running after 10 minutes")
	}
	run.Seconds = time.Since(start).Seconds()
	if p.Err() != nil {
		return run, fmt.Errorf("mariadb-binlog: %v\n%s", p.Err(), stderr.String())
	}
	ps := cmd.ProcessState
	run.CPUSeconds = (ps.UserTime() + ps.SystemTime()).Seconds()
	for _, f := range files {
		fi, err := os.Stat(filepath.Join(dir, f.Name))
		if err != nil {
			return run, fmt.Errorf("mariadb-binlog did not copy %s: %w", f.Name, err)
		}
		if uint64(fi.Size()) != f.Size {
			return run, fmt.Errorf("mariadb-binlog copied %d of the %d bytes of %s", fi.Size(), f.Size, f.Name)
		}
	}
	return run, nil
}

// catchUp starts binarc stream on the backlog and times it until the
// archive holds every byte; binarc keeps running for the loss window.
func (b *bench) catchUp() error {
	logf("binarc stream: catching up")
	var err error
	cl, args := cluster, b.opts.binarcArgs
	if b.stream.cluster != "" {
		cl, args = b.stream.cluster, b.stream.args
	}
	if b.watch, err = newArchiveWatch(b.ctx, b.s3, s3Prefix, cl); err != nil {
		return err
	}
	b.binLog = filepath.Join(b.tmp, cl+".log")
	meter := newCPUMeter(map[string]int{"mariadbd": b.db.Pid(), "versitygw": b.s3.Pid()})
	started := time.Now()
	if b.bin, err = startBinarc(b.binarc, cl, args, b.db, b.s3, b.replPass, b.binLog); err != nil {
		return err
	}
	b.cl.add(b.bin.Kill)
	died := streamExited("binarc", b.bin, b.binLog)
	progress, err := b.watch.waitArchived(b.ctx, b.files, started, b.opts.catchUpBudget, died)
	if err != nil {
		return fmt.Errorf("catch-up: %w\nbinarc log:\n%s", err, testenv.TailFile(b.binLog, 30))
	}
	c := &b.r.CatchUp
	c.Seconds = time.Since(started).Seconds()
	cpu, err := cpuTime(b.bin.Pid())
	if err != nil {
		return err
	}
	hwm, err := procfs.StatusKB(b.bin.Pid(), "VmHWM")
	if err != nil {
		return err
	}
	used := meter.used()
	c.MiBps = b.backlogMiB / c.Seconds
	c.SteadyMiBps = steadyRate(progress, b.r.Backlog.Bytes)
	c.RatioToMariadbBin = c.MiBps / b.r.MariadbBinlog.MiBps
	c.CPUSeconds = cpu.Seconds()
	c.CPUmsPerMiB = 1000 * c.CPUSeconds / b.backlogMiB
	c.PeakRSSMiB = float64(hwm) / 1024
	c.ServerCPUSeconds = used["mariadbd"]
	c.S3CPUSeconds = used["versitygw"]
	c.Progress = progress
	if n := len(progress); n >= 2 {
		c.LastStepSeconds = progress[n-1].Seconds - progress[n-2].Seconds
	}
	if c.StoredBytes, c.Segments, err = b.watch.storedBytes(b.ctx, b.files); err != nil {
		return err
	}
	c.CompressionRatio = float64(b.r.Backlog.Bytes) / float64(max(c.StoredBytes, 1))
	logf("catch-up: %.2f s, %.1f MiB/s (ratio %.2f), %.2f CPU-s, peak RSS %.1f MiB",
		c.Seconds, c.MiBps, c.RatioToMariadbBin, c.CPUSeconds, c.PeakRSSMiB)
	return nil
}

// startBinarc runs binarc stream with its default tuning plus extraArgs.
// The environment is the bench's minus any BINARC_* and AWS_* settings,
// plus the S3 server's credentials and the source password.
func startBinarc(binarc, cluster string, extraArgs []string, db *testenv.MariaDB, s3 *testenv.S3Server, pass, logPath string) (*testenv.Process, error) {
	return startBinarcEnv(binarc, cluster, extraArgs, db, s3, pass, logPath, nil)
}

// startBinarcEnv is startBinarc with env added last (it wins over the
// S3 server's own, e.g. an endpoint through a proxy).
func startBinarcEnv(binarc, cluster string, extraArgs []string, db *testenv.MariaDB, s3 *testenv.S3Server, pass, logPath string, env []string) (*testenv.Process, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	cmd := exec.Command(binarc, "stream",
		"--source", "mysql://"+replUser+"@"+db.Addr(),
		"--store", "s3://"+s3.Bucket+"/"+s3Prefix,
		"--cluster", cluster)
	cmd.Args = append(cmd.Args, extraArgs...)
	cmd.Env = append(append(noBinarcEnv(), s3.Env()...), "BINARC_SOURCE_PASSWORD="+pass, "BINARC_LOG_FORMAT=json")
	cmd.Env = append(cmd.Env, env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	return testenv.StartProcess("binarc", cmd)
}

// startStream starts binarc stream on the bench's cluster with the
// bench's -binarc-args, its log in b.binLog and b.watch on its archive, as
// the serve measurements archive the binlog they then serve.
func (b *bench) startStream() error {
	var err error
	if b.watch, err = newArchiveWatch(b.ctx, b.s3, s3Prefix, cluster); err != nil {
		return err
	}
	b.binLog = filepath.Join(b.tmp, "binarc.log")
	if b.bin, err = startBinarc(b.binarc, cluster, b.opts.binarcArgs, b.db, b.s3, b.replPass, b.binLog); err != nil {
		return err
	}
	b.cl.add(b.bin.Kill)
	return nil
}

// streamExited is waitArchived's check on a binarc stream the bench
// started: an error with the tail of its log once it has exited.
func streamExited(name string, bin *testenv.Process, logPath string) func() error {
	return func() error {
		if bin.Exited() {
			return fmt.Errorf("%s exited: %v\n%s", name, bin.Err(), testenv.TailFile(logPath, 30))
		}
		return nil
	}
}

// steadyRate is the archiving rate between 10 % and 90 % of total bytes.
func steadyRate(progress []progressPoint, total uint64) float64 {
	var lo, hi *progressPoint
	for i := range progress {
		p := &progress[i]
		if lo == nil && p.Bytes >= total/10 {
			lo = p
		}
		if hi == nil && p.Bytes >= total/10*9 {
			hi = p
		}
	}
	if lo == nil || hi == nil || hi.Seconds <= lo.Seconds {
		return 0
	}
	return float64(hi.Bytes-lo.Bytes) / mebi / (hi.Seconds - lo.Seconds)
}

// lossWindow runs the steady load against the caught-up binarc while
// watching the archive, then stops binarc cleanly.
func (b *bench) lossWindow() error {
	time.Sleep(settleTime)
	logf("steady load: %d commits/s for %v", b.opts.loadRate, b.opts.loadDuration)
	samples := newSampleSet()
	lctx, cancel := context.WithCancel(b.ctx)
	defer cancel()
	loadDone := make(chan struct{})
	var commits int
	var loadTime time.Duration
	var loadErr error
	cpu0, err := cpuTime(b.bin.Pid())
	if err != nil {
		return err
	}
	start := time.Now()
	go func() {
		defer close(loadDone)
		commits, loadTime, loadErr = steadyLoad(lctx, b.db, b.opts.loadRate, b.opts.loadDuration, b.opts.sampleEvery, samples.add)
	}()
	werr := b.watch.watchLossWindow(b.ctx, samples, pollIntervalLossMS*time.Millisecond, loadDone, lossGrace)
	cancel()
	<-loadDone
	elapsed := time.Since(start)
	cpu1, err := cpuTime(b.bin.Pid())
	if err != nil {
		return err
	}
	if loadErr != nil {
		return fmt.Errorf("steady load: %w", loadErr)
	}
	if werr != nil {
		return fmt.Errorf("loss window: %w\nbinarc log:\n%s", werr, testenv.TailFile(b.binLog, 30))
	}
	w := samples.windows()
	l := &b.r.LossWindow
	l.Commits = commits
	l.CommitsPerSec = float64(commits) / loadTime.Seconds()
	l.Samples = len(samples.all)
	l.Archived = len(w)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	l.P50ms = ms(percentile(w, 50))
	l.P90ms = ms(percentile(w, 90))
	l.P99ms = ms(percentile(w, 99))
	if len(w) > 0 {
		l.MinMs, l.Maxms = ms(w[0]), ms(w[len(w)-1])
	}
	l.BinarcCPUPercent = 100 * (cpu1 - cpu0).Seconds() / elapsed.Seconds()
	logf("loss window: p50 %.0f ms, p99 %.0f ms, max %.0f ms", l.P50ms, l.P99ms, l.Maxms)

	hwm, err := procfs.StatusKB(b.bin.Pid(), "VmHWM")
	if err != nil {
		return err
	}
	b.r.PeakRSSEndMiB = float64(hwm) / 1024
	if err := b.bin.Stop(syscall.SIGTERM, 60*time.Second); err != nil {
		return fmt.Errorf("binarc did not stop cleanly on SIGTERM: %v\n%s", err, testenv.TailFile(b.binLog, 30))
	}
	return nil
}
