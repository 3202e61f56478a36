package restore

import (
	"fmt"
	"net"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// A jailed program that needs no network beyond its own machine (the
// temporary server, mbstream, mariabackup, mariadb-binlog, a client on a
// socket) also gets a network namespace of its own, with only a loopback
// interface: it can reach nothing outside. The temporary server still
// replicates from binarc's private serve over TCP: binarc opens that
// listener inside the server's namespace (listenInNetns), on its
// loopback. Only the client into a --target keeps the host's network.

// loopbackUp brings up lo in this process's new network namespace.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("loopback: socket: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("loopback: get flags: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("loopback: bring up: %w", err)
	}
	return nil
}

// listenInNetns listens on 127.0.0.1, on a free port, inside the network
// namespace of process pid: the socket belongs to the namespace of the
// thread that makes it, so one locked thread enters it and comes back.
func listenInNetns(pid int) (net.Listener, error) {
	runtime.LockOSThread()
	own, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		return nil, err
	}
	defer own.Close()
	theirs, err := os.Open(fmt.Sprintf("/proc/%d/ns/net", pid))
	if err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("the temporary server's network namespace: %w", err)
	}
	defer theirs.Close()
	if err := unix.Setns(int(theirs.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("enter the temporary server's network namespace: %w", err)
	}
	ln, lerr := net.Listen("tcp", "127.0.0.1:0")
	if err := unix.Setns(int(own.Fd()), unix.CLONE_NEWNET); err != nil {
		// The thread stays locked and dies with this goroutine: no
		// other goroutine runs in the wrong namespace.
		if ln != nil {
			ln.Close()
		}
		return nil, fmt.Errorf("leave the temporary server's network namespace: %w", err)
	}
	runtime.UnlockOSThread()
	return ln, lerr
}

// listenLoopback opens the private serve's listener: where the options
// say, or on binarc's own loopback.
func (o replayOptions) listenLoopback() (net.Listener, error) {
	if o.listen != nil {
		return o.listen()
	}
	return net.Listen("tcp", "127.0.0.1:0")
}
