package restore

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestServerThatFailsToStart: a temporary server that exits at once is
// reported by waitSocket, and the stop that follows (deferred in the
// restore) returns instead of waiting forever for an exit already taken.
func TestServerThatFailsToStart(t *testing.T) {
	p, err := startProcess(exec.Command("sh", "-c", "exit 3"))
	if err != nil {
		t.Fatal(err)
	}
	err = p.waitSocket(context.Background(), filepath.Join(t.TempDir(), "s"), 30*time.Second)
	if err == nil || !strings.Contains(err.Error(), "exited") {
		t.Fatalf("waitSocket = %v; want the exit", err)
	}
	stopped := make(chan error, 1)
	go func() { stopped <- p.stop(time.Minute) }()
	select {
	case err := <-stopped:
		if err == nil || !strings.Contains(err.Error(), "exit status 3") {
			t.Errorf("stop = %v; want the exit status", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("stop hangs after a failed start")
	}
}

func TestStopKillsAServerThatIgnoresTERM(t *testing.T) {
	p, err := startProcess(exec.Command("sh", "-c", "trap '' TERM; sleep 30"))
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if err := p.stop(200 * time.Millisecond); err == nil || !strings.Contains(err.Error(), "killed") {
		t.Errorf("stop = %v; want killed", err)
	}
}
