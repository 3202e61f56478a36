package main

import (
	"os"
	"syscall"
	"time"

	"github.com/binarc/binarc/internal/procfs"
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
	return &machineMeter{user0: procfs.MachineCPU(), own0: own, kernel0: kernel}
}

// otherSeconds is the CPU seconds other processes used since
// newMachineMeter.
func (m *machineMeter) otherSeconds() float64 {
	own, kernel := processCPU()
	other := (procfs.MachineCPU() - m.user0) - (own - m.own0) - (kernel - m.kernel0)
	return max(other, 0).Seconds()
}

// processCPU returns the CPU time of the bench, of the children it has
// waited for and of every live descendant with the children each has
// waited for; and that of the kernel threads.
func processCPU() (own, kernel time.Duration) {
	var self, children syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &self)
	_ = syscall.Getrusage(syscall.RUSAGE_CHILDREN, &children)
	own = time.Duration(self.Utime.Nano() + self.Stime.Nano() + children.Utime.Nano() + children.Stime.Nano())
	pids, err := procfs.PIDs()
	if err != nil {
		return own, 0
	}
	parent := map[int]int{}
	stats := map[int]procfs.Stat{}
	for _, pid := range pids {
		if st, err := procfs.ReadStat(pid); err == nil {
			parent[pid], stats[pid] = st.PPID, st
		}
	}
	root := os.Getpid()
	for pid, st := range stats {
		if pid == 2 || st.PPID == 2 { // kthreadd and its threads
			kernel += st.CPU()
			continue
		}
		for p := parent[pid]; p > 1; p = parent[p] {
			if p == root {
				own += st.CPU() + st.ChildrenCPU()
				break
			}
		}
	}
	return own, kernel
}
