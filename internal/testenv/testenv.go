// Package testenv starts the real servers binarc is tested and measured
// against: MariaDB (mariadbd on a throw-away datadir) and an S3 endpoint
// (versitygw with its posix backend). Every server lives in a directory the
// caller gives, listens on 127.0.0.1 on a free port, and is killed by Close.
//
// It is the core of integration/testenv, which wraps it for tests (a
// testing.TB, t.TempDir, t.Cleanup), and of bench/. Nothing here fails a
// test or exits: every function returns an error naming what failed, and the
// callers decide. It must not import testing.
//
// Missing binaries are errors, never a skip: a skipped integration test reads
// as a pass. scripts/deps.sh (make deps) installs everything.
//
// Start-up is kept lean because the suite starts many servers: MariaDB
// datadirs are copied from a template initialised once per machine under
// CacheDir()/mariadb-datadir, and the servers skip the fsyncs that only
// protect against an OS crash.
package testenv

import (
	"context"
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
	"time"

	"github.com/binarc/binarc/internal/progs"
)

// handedOut remembers the ports FreePort returned, so two servers started by
// the same process never get the same one even if neither has bound it yet.
var (
	handedOutMu sync.Mutex
	handedOut   = map[int]bool{}
)

// FreePort returns a TCP port on 127.0.0.1 that nothing listens on right now
// and that this process has not handed out before. Another process may still
// take it before the caller binds it; the server starters retry on that.
func FreePort() (int, error) {
	handedOutMu.Lock()
	defer handedOutMu.Unlock()
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("find a free port: %w", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if !handedOut[port] {
			handedOut[port] = true
			return port, nil
		}
	}
	return 0, errors.New("find a free port: every port the kernel offered was already handed out")
}

// onFreePort calls start with a free port. FreePort cannot reserve a port
// against other processes (parallel test binaries), so when start fails and
// lostRace says another process took the port (and readies the next try), it
// tries twice more with other ports.
func onFreePort(start func(port int) error, lostRace func() bool) error {
	for attempt := 1; ; attempt++ {
		port, err := FreePort()
		if err != nil {
			return err
		}
		err = start(port)
		if err == nil || attempt == 3 || !lostRace() {
			return err
		}
	}
}

// waitReady calls ready every 20 ms until it succeeds, proc exits, ctx ends
// or timeout passes.
func waitReady(ctx context.Context, proc *Process, timeout time.Duration, ready func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := ready()
		if err == nil {
			return nil
		}
		if proc.Exited() {
			return fmt.Errorf("exited during start-up: %v", proc.Err())
		}
		if ctx.Err() != nil {
			return fmt.Errorf("not ready: %w", ctx.Err())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %v: %v", timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// BinaryPath returns the path of the first of names found on $PATH or in
// /usr/sbin or /usr/bin (mariadbd lives in /usr/sbin, which is not on every
// user's $PATH). Names are tried in order, so list the preferred one first:
// BinaryPath("mariadbd", "mysqld").
func BinaryPath(names ...string) (string, error) {
	p, err := progs.Find(names...)
	if err != nil {
		return "", fmt.Errorf("%w: run scripts/deps.sh (make deps)", err)
	}
	return p, nil
}

// Process is one run of a program, reaped in the background. The zero value
// is not usable; use StartProcess.
type Process struct {
	name string
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited and been reaped
	err  error         // cmd.Wait's result, valid once done is closed
}

// StartProcess starts cmd in a process group of its own, so that Kill also
// kills anything it forked, and reaps it in the background. name is what
// errors call it. The child gets SIGKILL if the parent dies without cleaning
// up (Pdeathsig: a crashed test binary, a panic in another goroutine), so an
// interrupted run leaves no servers behind.
func StartProcess(name string, cmd *exec.Cmd) (*Process, error) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &Process{name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// Name is the name StartProcess was given.
func (p *Process) Name() string { return p.name }

// Pid is the process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Done is closed once the process has exited and been reaped.
func (p *Process) Done() <-chan struct{} { return p.done }

// Err is the process's exit error (nil for a zero exit status); valid once
// Done is closed.
func (p *Process) Err() error { return p.err }

// Exited reports whether the process has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Stop sends sig to the process (not its group) and waits up to timeout for
// it to exit. It returns the exit error (nil for a zero exit status), or an
// error if the process is still running.
func (p *Process) Stop(sig syscall.Signal, timeout time.Duration) error {
	if !p.Exited() {
		if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
			return fmt.Errorf("signal %s (pid %d): %w", p.name, p.Pid(), err)
		}
	}
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		return fmt.Errorf("%s (pid %d) still running %v after %v", p.name, p.Pid(), timeout, sig)
	}
}

// Kill sends SIGKILL to the process group and waits for the process to be
// reaped.
func (p *Process) Kill() {
	if p.Exited() {
		return
	}
	_ = syscall.Kill(-p.Pid(), syscall.SIGKILL)
	<-p.done
}

var (
	errNotRunning     = errors.New("server is not running")
	errAlreadyRunning = errors.New("server is already running")
)

// running is the process of a server that can be stopped and started again
// (MariaDB, S3Server): nil while stopped.
type running struct {
	mu   sync.Mutex
	proc *Process
}

// Pid is the running server's process id, 0 while it is stopped.
func (r *running) Pid() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.proc == nil {
		return 0
	}
	return r.proc.Pid()
}

// start starts cmd and keeps it as the server once ready succeeds (see
// waitReady); a server that never gets ready is killed.
func (r *running) start(ctx context.Context, name string, cmd *exec.Cmd, timeout time.Duration, ready func() error) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.proc != nil {
		return errAlreadyRunning
	}
	proc, err := StartProcess(name, cmd)
	if err != nil {
		return err
	}
	if err := waitReady(ctx, proc, timeout, ready); err != nil {
		proc.Kill()
		return err
	}
	r.proc = proc
	return nil
}

// stop sends sig and waits up to timeout for the server to exit. A server
// that has exited has stopped, whatever its exit status.
func (r *running) stop(sig syscall.Signal, timeout time.Duration) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.proc == nil {
		return errNotRunning
	}
	if err := r.proc.Stop(sig, timeout); err != nil && !r.proc.Exited() {
		return err
	}
	r.proc = nil
	return nil
}

// kill kills the server and reports whether it was running.
func (r *running) kill() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.proc == nil {
		return false
	}
	r.proc.Kill()
	r.proc = nil
	return true
}

// RandomHex returns n random bytes, hex encoded.
func RandomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on Linux
	return hex.EncodeToString(b)
}

// TailFile returns the last n lines of a log file, for error messages.
func TailFile(path string, n int) string {
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

// OpenToOthers lets other users reach dir, a test's temporary directory
// (t.TempDir makes it and its parent 0700): the unprivileged user a
// restore runs its programs as (mysql) must.
func OpenToOthers(dir string) error {
	for _, p := range []string{dir, filepath.Dir(dir)} {
		if err := os.Chmod(p, 0o755); err != nil {
			return err
		}
	}
	return nil
}
