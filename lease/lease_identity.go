package lease

import (
	"os"
	"strconv"
	"strings"
	"syscall"
)

// selfIdentity describes this process for a lease.
func selfIdentity(command string) Info {
	host, _ := os.Hostname()
	pid := os.Getpid()
	return Info{Host: host, PID: pid, Command: command, BootID: bootID(), PIDNamespace: pidNamespace(), Started: processStart(pid)}
}

// sameProcessSpace tells whether holder's pid can be looked up here: the
// same host, the same boot of the same kernel, the same pid namespace.
// Two containers with one host name, each pid 1, are not.
func sameProcessSpace(holder, self Info) bool {
	return holder.Host == self.Host && holder.BootID != "" && holder.BootID == self.BootID &&
		holder.PIDNamespace == self.PIDNamespace
}

// processAlive tells whether the holder's process still runs, in a
// process space where its pid means something: its pid exists and was
// started when the holder says. Our own process counts as gone (a lease
// it held before is taken back).
func processAlive(holder, self Info) bool {
	if holder.PID <= 0 {
		return false
	}
	if holder.PID == self.PID && holder.Started == self.Started {
		return false // ourselves: a lease from earlier in this process
	}
	if syscall.Kill(holder.PID, 0) == syscall.ESRCH {
		return false
	}
	if holder.Started != 0 {
		if st := processStart(holder.PID); st != 0 && st != holder.Started {
			return false // the pid was reused
		}
	}
	return true
}

// bootID identifies this boot of this machine: the kernel's boot_id, or
// the machine id where /proc does not tell.
func bootID() string {
	for _, f := range []string{"/proc/sys/kernel/random/boot_id", "/etc/machine-id"} {
		if b, err := os.ReadFile(f); err == nil {
			if s := strings.TrimSpace(string(b)); s != "" {
				return s
			}
		}
	}
	return ""
}

// pidNamespace names this process's pid namespace ("pid:[4026531836]").
func pidNamespace() string {
	s, _ := os.Readlink("/proc/self/ns/pid")
	return s
}

// processStart is a process's start time in clock ticks since boot
// (field 22 of /proc/PID/stat), or 0 if unknown.
func processStart(pid int) uint64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); field 22 is f[19].
	if len(f) < 20 {
		return 0
	}
	n, _ := strconv.ParseUint(f[19], 10, 64)
	return n
}
