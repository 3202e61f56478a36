// Package procfs reads what binarc needs from Linux's /proc: a process's
// stat (parent, CPU times, start time) and status (memory) lines, the
// list of processes, the machine's CPU time, and the identity of this boot
// and pid namespace (for the lease). One parser, so /proc/PID/stat's
// command name in parentheses, which may hold spaces and ')', is handled
// once.
package procfs

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// ClockTicks is USER_HZ, the unit of /proc/PID/stat times: fixed at 100 on
// Linux whatever the kernel's HZ (sysconf(_SC_CLK_TCK) needs cgo).
const ClockTicks = 100

// Stat is what binarc reads from /proc/PID/stat. Times are in clock ticks.
type Stat struct {
	// Comm is the command name (field 2, without its parentheses).
	Comm string
	// State is field 3: 'R', 'S', 'Z' (a zombie) and so on.
	State byte
	// PPID is the parent's pid (field 4).
	PPID int
	// UTime, STime are the process's user and system time (fields 14,
	// 15); CUTime, CSTime those of the children it has waited for (16, 17).
	UTime, STime, CUTime, CSTime uint64
	// StartTime is when the process started, in ticks since boot (field
	// 22): with the pid, it names one process, even after the pid is reused.
	StartTime uint64
}

// CPU is the process's user and system time.
func (s Stat) CPU() time.Duration { return ticks(s.UTime + s.STime) }

// ChildrenCPU is the user and system time of the children it waited for.
func (s Stat) ChildrenCPU() time.Duration { return ticks(s.CUTime + s.CSTime) }

func ticks(t uint64) time.Duration { return time.Duration(t) * time.Second / ClockTicks }

// ReadStat reads /proc/PID/stat.
func ReadStat(pid int) (Stat, error) {
	path := fmt.Sprintf("/proc/%d/stat", pid)
	b, err := os.ReadFile(path)
	if err != nil {
		return Stat{}, err
	}
	st, err := parseStat(string(b))
	if err != nil {
		return Stat{}, fmt.Errorf("%s: %w", path, err)
	}
	return st, nil
}

// parseStat parses a /proc/PID/stat line.
func parseStat(s string) (Stat, error) {
	// The command name is in parentheses and may hold spaces and ')':
	// it ends at the last ')'.
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open || end+2 > len(s) {
		return Stat{}, fmt.Errorf("no command name in parentheses")
	}
	f := strings.Fields(s[end+2:])
	// f[0] is field 3 (state); field n is f[n-3].
	if len(f) < 20 || len(f[0]) != 1 {
		return Stat{}, fmt.Errorf("too few fields")
	}
	st := Stat{Comm: s[open+1 : end], State: f[0][0]}
	var err error
	if st.PPID, err = strconv.Atoi(f[1]); err != nil {
		return Stat{}, fmt.Errorf("bad ppid %q", f[1])
	}
	for i, p := range []*uint64{&st.UTime, &st.STime, &st.CUTime, &st.CSTime} {
		if *p, err = strconv.ParseUint(f[11+i], 10, 64); err != nil {
			return Stat{}, fmt.Errorf("bad CPU time %q", f[11+i])
		}
	}
	if st.StartTime, err = strconv.ParseUint(f[19], 10, 64); err != nil {
		return Stat{}, fmt.Errorf("bad start time %q", f[19])
	}
	return st, nil
}

// StartTime is a process's start time in clock ticks since boot, or 0 when
// it cannot be read (the process is gone, or /proc is not mounted).
func StartTime(pid int) uint64 {
	st, err := ReadStat(pid)
	if err != nil {
		return 0
	}
	return st.StartTime
}

// StatusField returns a field of /proc/PID/status, such as VmHWM ("41236
// kB"), its value trimmed.
func StatusField(pid int, field string) (string, error) {
	path := fmt.Sprintf("/proc/%d/status", pid)
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	if v, ok := lineValue(string(b), field+":"); ok {
		return v, nil
	}
	return "", fmt.Errorf("%s: no %s", path, field)
}

// StatusKB returns a memory field of /proc/PID/status (VmHWM, VmRSS) in KiB.
func StatusKB(pid int, field string) (uint64, error) {
	v, err := StatusField(pid, field)
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(strings.TrimSuffix(v, " kB"), 10, 64)
}

// lineValue returns the rest of the first line of text that starts with
// prefix, trimmed.
func lineValue(text, prefix string) (string, bool) {
	for _, line := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(line, prefix); ok {
			return strings.TrimSpace(v), true
		}
	}
	return "", false
}

// Cmdline returns a process's command line, one string per argument
// (empty for a kernel thread or a zombie).
func Cmdline(pid int) ([]string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return nil, err
	}
	if len(b) == 0 {
		return nil, nil
	}
	return strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00"), nil
}

// PIDs lists the processes in /proc.
func PIDs() ([]int, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, e := range ents {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// MachineCPU is the user, nice and system time of all cores since boot
// (the first line of /proc/stat), or 0 when it cannot be read.
func MachineCPU() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	return machineCPU(string(b))
}

func machineCPU(s string) time.Duration {
	line, _, _ := strings.Cut(s, "\n")
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
	return ticks(t)
}

// CPUModel is the first CPU's model name from /proc/cpuinfo, or "".
func CPUModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	return cpuModel(string(b))
}

func cpuModel(s string) string {
	v, _ := lineValue(s, "model name")
	return strings.TrimSpace(strings.TrimPrefix(v, ":"))
}

// KernelRelease is the running kernel's release ("6.1.0-18-amd64"), or "".
func KernelRelease() string {
	b, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	return strings.TrimSpace(string(b))
}

// BootID identifies this boot of this machine: the kernel's boot_id, or
// the machine id (/etc/machine-id) where /proc does not tell; "" when
// neither can be read.
func BootID() string {
	for _, f := range []string{"/proc/sys/kernel/random/boot_id", "/etc/machine-id"} {
		if b, err := os.ReadFile(f); err == nil {
			if s := strings.TrimSpace(string(b)); s != "" {
				return s
			}
		}
	}
	return ""
}

// PIDNamespace names this process's pid namespace ("pid:[4026531836]"),
// or "" when it cannot be read.
func PIDNamespace() string {
	s, _ := os.Readlink("/proc/self/ns/pid")
	return s
}
