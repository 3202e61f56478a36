// Package testenv starts the real servers binarc's integration tests run
// against: a MariaDB primary (mariadbd on a throw-away datadir) and an S3
// endpoint (versitygw with its posix backend). Every server lives in the test's
// temporary directory, listens on 127.0.0.1 on a free port, and is killed in
// t.Cleanup.
//
// Missing binaries fail the test rather than skip it: a skipped integration
// test reads as a pass. scripts/deps.sh (make deps) installs everything.
//
// Start-up is kept lean because the suite starts many servers: MariaDB
// datadirs are copied from a template initialised once per machine under
// ${BINARC_CACHE:-$HOME/.cache/binarc}/mariadb-datadir, and the servers skip
// the fsyncs that only protect against an OS crash.
package testenv

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// handedOut remembers the ports FreePort returned, so two servers started by
// the same test binary never get the same one even if neither has bound it yet.
var (
	handedOutMu sync.Mutex
	handedOut   = map[int]bool{}
)

// FreePort returns a TCP port on 127.0.0.1 that nothing listens on right now
// and that this process has not handed out before. Another process may still
// take it before the caller binds it; the server starters retry on that.
func FreePort(t testing.TB) int {
	t.Helper()
	handedOutMu.Lock()
	defer handedOutMu.Unlock()
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("testenv: find a free port: %v", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if !handedOut[port] {
			handedOut[port] = true
			return port
		}
	}
	t.Fatal("testenv: find a free port: every port the kernel offered was already handed out")
	return 0
}

// BinaryPath returns the path of the first of names found on $PATH or in
// /usr/sbin or /usr/bin (mariadbd lives in /usr/sbin, which is not on every
// user's $PATH). Names are tried in order, so list the preferred one first:
// BinaryPath("mariadbd", "mysqld").
func BinaryPath(names ...string) (string, error) {
	for _, name := range names {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
		for _, dir := range []string{"/usr/sbin", "/usr/bin"} {
			p := filepath.Join(dir, name)
			if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
				return p, nil
			}
		}
	}
	return "", fmt.Errorf("none of %s found on $PATH, in /usr/sbin or /usr/bin: run scripts/deps.sh (make deps)",
		strings.Join(names, ", "))
}

// process is one run of a server binary. The zero value is not usable; use
// startProcess.
type process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited and been reaped
	err  error         // cmd.Wait's result, valid once done is closed
}

// startProcess starts cmd and reaps it in the background. The child gets
// SIGKILL if the test binary dies first (Pdeathsig), so a crashed or
// interrupted test run leaves no servers behind.
func startProcess(cmd *exec.Cmd) (*process, error) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// exited reports whether the process has exited.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends sig and waits up to timeout for the process to exit.
func (p *process) stop(sig os.Signal, timeout time.Duration) error {
	if p.exited() {
		return nil
	}
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(timeout):
		return fmt.Errorf("pid %d still running %s after %v", p.cmd.Process.Pid, timeout, sig)
	}
}

// kill sends SIGKILL and waits for the process to be reaped.
func (p *process) kill() {
	if p.exited() {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// randomHex returns n random bytes, hex encoded.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on Linux
	return hex.EncodeToString(b)
}

// tailFile returns the last n lines of a log file, for failure messages.
func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
