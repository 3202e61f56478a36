package lease

import (
	"os"
	"syscall"

	"github.com/binarc/binarc/internal/procfs"
)

// selfIdentity describes this process for a lease.
func selfIdentity(command string) Info {
	host, _ := os.Hostname()
	pid := os.Getpid()
	return Info{Host: host, PID: pid, Command: command, BootID: procfs.BootID(), PIDNamespace: procfs.PIDNamespace(), Started: procfs.StartTime(pid)}
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
		if st := procfs.StartTime(holder.PID); st != 0 && st != holder.Started {
			return false // the pid was reused
		}
	}
	return true
}
