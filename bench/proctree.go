package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/binarc/binarc/internal/procfs"
	"github.com/binarc/binarc/internal/testenv"
)

// treeCPU samples the CPU time of the processes a command runs (its
// descendants) while it runs. The command's rusage counts them all
// together; the samples split that total by program. A child's last
// interval before it exits is not seen, so the split is good to about one
// sampling interval per child.
type treeCPU struct {
	root int
	mu   sync.Mutex
	seen map[int]procSample // by pid: the latest sample
	stop chan struct{}
	done chan struct{}
}

type procSample struct {
	name string
	cpu  time.Duration
}

func watchTreeCPU(root int, every time.Duration) *treeCPU {
	t := &treeCPU{root: root, seen: map[int]procSample{}, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(t.done)
		ticker := time.NewTicker(every)
		defer ticker.Stop()
		for {
			t.sample()
			select {
			case <-t.stop:
				return
			case <-ticker.C:
			}
		}
	}()
	return t
}

func (t *treeCPU) sample() {
	pids, err := procfs.PIDs()
	if err != nil {
		return
	}
	parent := map[int]int{}
	stats := map[int]procSample{}
	for _, pid := range pids {
		st, err := procfs.ReadStat(pid)
		if err != nil {
			continue // exited since the listing
		}
		parent[pid] = st.PPID
		stats[pid] = procSample{name: st.Comm, cpu: st.CPU()}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for pid, s := range stats {
		for p := parent[pid]; p > 1; p = parent[p] {
			if p == t.root {
				t.seen[pid] = s
				break
			}
		}
	}
}

// finish stops sampling and returns the CPU seconds of the descendants
// seen, summed by program name.
func (t *treeCPU) finish() map[string]float64 {
	close(t.stop)
	<-t.done
	t.mu.Lock()
	defer t.mu.Unlock()
	out := map[string]float64{}
	for _, s := range t.seen {
		out[s.name] += s.cpu.Seconds()
	}
	return out
}

// rusageSeconds is the user+system CPU time of an exited command and of
// the children it waited for.
func rusageSeconds(ps *os.ProcessState) float64 {
	if ps == nil {
		return 0
	}
	return (ps.UserTime() + ps.SystemTime()).Seconds()
}

// cleanEnv is the bench's environment minus BINARC_*, AWS_* and TMPDIR, so
// a developer's shell cannot change what a measured command does.
func cleanEnv() []string { return envWithout("BINARC_", "AWS_", "TMPDIR=") }

// noBinarcEnv is the bench's environment minus BINARC_* and AWS_* (TMPDIR
// kept): a binarc command's settings and S3 credentials are the bench's.
func noBinarcEnv() []string { return envWithout("BINARC_", "AWS_") }

// envWithout is the bench's environment minus the variables that start
// with one of prefixes.
func envWithout(prefixes ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !slices.ContainsFunc(prefixes, func(p string) bool { return strings.HasPrefix(kv, p) }) {
			env = append(env, kv)
		}
	}
	return env
}

// piped is one side of a pipe runPipe runs: the process's name and
// command, and what an error of it shows (its stderr or its log).
type piped struct {
	name   string
	cmd    *exec.Cmd
	output func() string
}

// runPipe runs from | to, the two connected by a pipe as a shell would,
// and waits for both, each up to timeout. to starts first; from failing
// kills it. The error of a process that failed names it and adds its
// output.
func (b *bench) runPipe(from, to piped, timeout time.Duration) error {
	pr, pw, err := os.Pipe()
	if err != nil {
		return err
	}
	from.cmd.Stdout, to.cmd.Stdin = pw, pr
	t, err := testenv.StartProcess(to.name, to.cmd)
	if err != nil {
		pr.Close()
		pw.Close()
		return err
	}
	b.cl.add(t.Kill)
	f, err := testenv.StartProcess(from.name, from.cmd)
	pr.Close() // the children hold their ends
	pw.Close()
	if err != nil {
		t.Kill()
		return err
	}
	b.cl.add(f.Kill)
	if err := waitChild(b.ctx, f, timeout); err != nil {
		t.Kill()
		return fmt.Errorf("%s: %w\n%s", from.name, err, from.output())
	}
	if err := waitChild(b.ctx, t, timeout); err != nil {
		return fmt.Errorf("%s: %w\n%s", to.name, err, to.output())
	}
	return nil
}

// waitChild waits for a child the bench started, up to timeout, and
// kills it if the run is cancelled or the time is up.
func waitChild(ctx context.Context, c *testenv.Process, timeout time.Duration) error {
	select {
	case <-c.Done():
		return c.Err()
	case <-ctx.Done():
		c.Kill()
		return ctx.Err()
	case <-time.After(timeout):
		c.Kill()
		return fmt.Errorf("%s still running after %v", c.Name(), timeout)
	}
}
