package restore

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"syscall"
	"time"
)

// process is a child binarc waits for (the temporary server). Its done
// channel is closed when it exits, so any number of waiters see the exit:
// a failed start seen by waitSocket is still seen by the stop that follows.
type process struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error // cmd.Wait's result, set before done is closed
}

func startProcess(cmd *exec.Cmd) (*process, error) {
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

// stop asks the process to shut down (SIGTERM) and waits up to timeout,
// then kills it.
func (p *process) stop(timeout time.Duration) error {
	select {
	case <-p.done:
		return p.err
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.done:
		return p.err
	case <-t.C:
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("the temporary server did not shut down within %s; killed it (InnoDB recovers at the next start)", timeout)
	}
}

// waitSocket waits until the server accepts connections on its socket, or
// fails when it exits, ctx ends or timeout passes.
func (p *process) waitSocket(ctx context.Context, sock string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			return fmt.Errorf("it exited: %v", p.err)
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		if c, err := net.DialTimeout("unix", sock, time.Second); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("no answer on %s after %s", sock, timeout)
}
