package main

import (
	"fmt"
	"math"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/binarc/binarc/internal/procfs"
)

// sampleSet holds the sampled commits of the steady load, shared by the
// writer (add) and the archive watcher (markDurable).
type sampleSet struct {
	mu      sync.Mutex
	all     []*commitSample
	pending map[string][]*commitSample // by file, in position order
}

func newSampleSet() *sampleSet { return &sampleSet{pending: map[string][]*commitSample{}} }

func (s *sampleSet) add(c commitSample) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := &c
	s.all = append(s.all, p)
	s.pending[c.File] = append(s.pending[c.File], p)
}

func (s *sampleSet) pendingFiles() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var files []string
	for f, l := range s.pending {
		if len(l) > 0 {
			files = append(files, f)
		}
	}
	return files
}

func (s *sampleSet) pendingCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, l := range s.pending {
		n += len(l)
	}
	return n
}

// markDurable stamps the samples of file at or below end with at.
func (s *sampleSet) markDurable(file string, end uint64, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.pending[file]
	i := 0
	for ; i < len(l) && l[i].Pos <= end; i++ {
		l[i].Durable = at
	}
	s.pending[file] = l[i:]
}

// windows returns durable-minus-commit of every stamped sample.
func (s *sampleSet) windows() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	var d []time.Duration
	for _, c := range s.all {
		if !c.Durable.IsZero() {
			d = append(d, c.Durable.Sub(c.Committed))
		}
	}
	slices.Sort(d)
	return d
}

// percentile of sorted durations, nearest rank.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// cpuTime is a process's utime+stime.
func cpuTime(pid int) (time.Duration, error) {
	st, err := procfs.ReadStat(pid)
	return st.CPU(), err
}

// cpuMeter measures the CPU time processes use between start and stop.
type cpuMeter struct {
	pids  map[string]int
	start map[string]time.Duration
}

func newCPUMeter(pids map[string]int) *cpuMeter {
	m := &cpuMeter{pids: pids, start: map[string]time.Duration{}}
	for name, pid := range pids {
		m.start[name], _ = cpuTime(pid)
	}
	return m
}

// used returns the CPU seconds each process used since newCPUMeter.
func (m *cpuMeter) used() map[string]float64 {
	out := map[string]float64{}
	for name, pid := range m.pids {
		if t, err := cpuTime(pid); err == nil {
			out[name] = (t - m.start[name]).Seconds()
		}
	}
	return out
}

const mebi = 1 << 20

func mib(n uint64) string { return fmt.Sprintf("%.1f MiB", float64(n)/mebi) }

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05.000")}, args...)...)
}
