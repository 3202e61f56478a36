package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

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
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return
	}
	parent := map[int]int{}
	stats := map[int]procSample{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := readProcStat(pid)
		if err != nil {
			continue // exited since the listing
		}
		parent[pid] = st.ppid
		stats[pid] = procSample{name: st.name, cpu: st.cpu}
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

// procStat is what the bench reads from /proc/PID/stat.
type procStat struct {
	name string
	ppid int
	// cpu is the process's utime+stime; childCPU is that of the children
	// it has waited for (cutime+cstime).
	cpu, childCPU time.Duration
}

func readProcStat(pid int) (procStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	s := string(b)
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open || end+2 > len(s) {
		return procStat{}, fmt.Errorf("/proc/%d/stat: no comm", pid)
	}
	f := strings.Fields(s[end+2:])
	// f[0] is field 3 (state): ppid is field 4, utime, stime, cutime and
	// cstime 14 to 17.
	if len(f) < 15 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	ppid, err := strconv.Atoi(f[1])
	if err != nil {
		return procStat{}, fmt.Errorf("/proc/%d/stat: bad ppid", pid)
	}
	var ticks [4]uint64
	for i := range ticks {
		if ticks[i], err = strconv.ParseUint(f[11+i], 10, 64); err != nil {
			return procStat{}, fmt.Errorf("/proc/%d/stat: bad CPU times", pid)
		}
	}
	d := func(t uint64) time.Duration { return time.Duration(t) * time.Second / clockTicks }
	return procStat{name: s[open+1 : end], ppid: ppid, cpu: d(ticks[0] + ticks[1]), childCPU: d(ticks[2] + ticks[3])}, nil
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
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "BINARC_") && !strings.HasPrefix(kv, "AWS_") && !strings.HasPrefix(kv, "TMPDIR=") {
			env = append(env, kv)
		}
	}
	return env
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
