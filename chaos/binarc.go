package chaos

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/binarc/binarc/internal/procfs"
	"github.com/binarc/binarc/internal/testenv"
)

// stopTimeout is how long a binarc stream may take to exit after SIGTERM
// (check 6).
const stopTimeout = 60 * time.Second

// binarcRun is one run of binarc stream: its process, its log file, and the
// peak of its resident set (VmHWM), sampled while it runs.
type binarcRun struct {
	n       int
	proc    *testenv.Process
	logPath string
	peakKB  uint64
	stop    chan struct{}
	wg      sync.WaitGroup
	stopped bool // the campaign killed or stopped it
}

// runner starts binarc commands for the campaign.
type runner struct {
	binarc string
	dir    string
	c      *cluster
	store  string // s3://bucket/archive
	runs   int
}

func (r *runner) streamArgs() []string {
	args := []string{"stream", "--source", r.c.sourceURL(), "--store", r.store, "--cluster", clusterName,
		"--source-tls", "disable", "--flush-interval", "200ms", "--segment-size", "256KiB", "--server-id", "4207"}
	if r.c.semiSync {
		args = append(args, "--semi-sync")
	}
	return args
}

// startStream starts binarc stream through the proxies.
func (r *runner) startStream() (*binarcRun, error) {
	r.runs++
	run := &binarcRun{n: r.runs, logPath: filepath.Join(r.dir, fmt.Sprintf("stream-%03d.log", r.runs)), stop: make(chan struct{})}
	f, err := os.Create(run.logPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cmd := exec.Command(r.binarc, r.streamArgs()...)
	cmd.Env = append(os.Environ(), r.c.binarcEnv(true)...)
	cmd.Stdout, cmd.Stderr = f, f
	if run.proc, err = testenv.StartProcess("binarc stream", cmd); err != nil {
		return nil, err
	}
	run.wg.Add(1)
	go run.sample()
	return run, nil
}

// sample records VmHWM every 200 ms until the process exits (VmHWM is a
// peak, so the last sample before exit holds the run's peak).
func (b *binarcRun) sample() {
	defer b.wg.Done()
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		if kb, err := procfs.StatusKB(b.proc.Pid(), "VmHWM"); err == nil && kb > b.peakKB {
			b.peakKB = kb
		}
		select {
		case <-b.proc.Done():
			return
		case <-t.C:
		}
	}
}

// kill is SIGKILL.
func (b *binarcRun) kill() {
	b.stopped = true
	b.proc.Kill()
	b.wg.Wait()
}

// exitedByItself says how the run ended when it ended without the
// campaign stopping it (binarc stream should run until told to stop),
// with its last log lines; "" while it runs or after kill/terminate.
func (b *binarcRun) exitedByItself() string {
	if b.stopped || !b.proc.Exited() {
		return ""
	}
	out, _ := os.ReadFile(b.logPath)
	return fmt.Sprintf("binarc stream (run %d) exited by itself (%v): %s", b.n, b.proc.Err(), lastLines(string(out), 2))
}

// terminate is SIGTERM; it returns how long the exit took, or an error when
// binarc did not exit within stopTimeout (then it is killed).
func (b *binarcRun) terminate() (time.Duration, error) {
	b.stopped = true
	start := time.Now()
	err := b.proc.Stop(syscall.SIGTERM, stopTimeout)
	took := time.Since(start)
	if !b.proc.Exited() {
		b.kill()
		return took, fmt.Errorf("binarc stream (run %d) still running %v after SIGTERM", b.n, stopTimeout)
	}
	b.wg.Wait()
	if err != nil {
		return took, fmt.Errorf("binarc stream (run %d) exited with %v after SIGTERM", b.n, err)
	}
	return took, nil
}

// run runs a binarc command to completion (with a deadline) and returns its
// standard output, or on failure both outputs.
func (r *runner) run(ctx context.Context, timeout time.Duration, proxied bool, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, r.binarc, args...)
	cmd.Env = append(os.Environ(), r.c.binarcEnv(proxied)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String() + stderr.String(), fmt.Errorf("binarc %s: %w", args[0], err)
	}
	return stdout.String(), nil
}

// logEvent is one line of binarc's JSON log that the report keeps.
type logEvent struct {
	Time    string `json:"time"`
	Level   string `json:"level"`
	Message string `json:"message"`
	Run     int    `json:"run"`
}

// notableLines returns the warn/error lines (and the failover lines) a
// binarc run logged between from and to.
func notableLines(path string, run int, from, to time.Time) []logEvent {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var out []logEvent
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var e logEvent
		if json.Unmarshal(sc.Bytes(), &e) != nil {
			continue
		}
		t, err := time.Parse(time.RFC3339, e.Time)
		if err != nil || t.Before(from.Truncate(time.Second)) || t.After(to) {
			continue
		}
		if e.Level == "warn" || e.Level == "error" || e.Level == "fatal" || bytes.Contains([]byte(e.Message), []byte("FAILOVER")) {
			e.Run = run
			out = append(out, e)
		}
	}
	return out
}

func mkdirs(dirs ...string) error {
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	return nil
}
