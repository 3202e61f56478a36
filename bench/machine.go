package main

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// machineMeter tells how much CPU other processes on the machine (not the
// bench, not what it started, not kernel threads) used: the bench's
// numbers are only as good as the machine was quiet. Time in interrupts
// and kernel threads (writeback, softirqs for loopback traffic) is left
// out: it is spent on behalf of everyone, the measured commands included.
type machineMeter struct {
	user0, own0, kernel0 time.Duration
}

func newMachineMeter() *machineMeter {
	own, kernel := processCPU()
	return &machineMeter{user0: machineProcessTime(), own0: own, kernel0: kernel}
}

// otherSeconds is the CPU seconds other processes used since
// newMachineMeter.
func (m *machineMeter) otherSeconds() float64 {
	own, kernel := processCPU()
	other := (machineProcessTime() - m.user0) - (own - m.own0) - (kernel - m.kernel0)
	return max(other, 0).Seconds()
}

// machineProcessTime is the user, nice and system time of all cores, from
// /proc/stat.
func machineProcessTime() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	// cpu user nice system idle iowait irq softirq steal ...
	if len(f) < 4 || f[0] != "cpu" {
		return 0
	}
	var t uint64
	for _, s := range f[1:4] {
		v, _ := strconv.ParseUint(s, 10, 64)
		t += v
	}
	return time.Duration(t) * time.Second / clockTicks
}

// processCPU returns the CPU time of the bench, of the children it has
// waited for and of every live descendant with the children each has
// waited for; and that of the kernel threads.
func processCPU() (own, kernel time.Duration) {
	var self, children syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &self)
	_ = syscall.Getrusage(syscall.RUSAGE_CHILDREN, &children)
	own = time.Duration(self.Utime.Nano() + self.Stime.Nano() + children.Utime.Nano() + children.Stime.Nano())
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return own, 0
	}
	parent := map[int]int{}
	stats := map[int]procStat{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, err := readProcStat(pid); err == nil {
			parent[pid], stats[pid] = st.ppid, st
		}
	}
	root := os.Getpid()
	for pid, st := range stats {
		if pid == 2 || st.ppid == 2 { // kthreadd and its threads
			kernel += st.cpu
			continue
		}
		for p := parent[pid]; p > 1; p = parent[p] {
			if p == root {
				own += st.cpu + st.childCPU
				break
			}
		}
	}
	return own, kernel
}
