package restore

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/binarc/binarc/replication"
	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/rs/zerolog"
)

// fakeSession records the statements replayTimeline sends and answers
// them: fail makes the statements starting with it fail, status is called
// for SHOW SLAVE STATUS (the point at which a test acts).
type fakeSession struct {
	mu     sync.Mutex
	sent   []string
	fail   string
	port   int
	status func(port int) map[string]string
}

var masterPort = regexp.MustCompile(`MASTER_PORT=(\d+)`)

func (f *fakeSession) Execute(q string, _ ...any) (*mysql.Result, error) {
	f.mu.Lock()
	f.sent = append(f.sent, q)
	if m := masterPort.FindStringSubmatch(q); m != nil {
		f.port, _ = strconv.Atoi(m[1])
	}
	port := f.port
	f.mu.Unlock()
	if f.fail != "" && strings.HasPrefix(q, f.fail) {
		return nil, &mysql.MyError{Code: 1200, Message: "Misconfigured slave"}
	}
	if !strings.HasPrefix(q, "SHOW SLAVE") {
		return &mysql.Result{}, nil
	}
	var names []string
	var row []any
	if f.status != nil {
		for k, v := range f.status(port) {
			names, row = append(names, k), append(row, v)
		}
	}
	rs, err := mysql.BuildSimpleTextResultset(names, [][]any{row})
	if len(names) == 0 {
		rs, err = &mysql.Resultset{}, nil
	}
	return &mysql.Result{Resultset: rs}, err
}

func (f *fakeSession) statements() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.sent...)
}

func oneRange(t *testing.T) []ReplayRange {
	return []ReplayRange{{Timeline: "t1", File: "b.000001", Path: filepath.Join(t.TempDir(), "b.000001"), Start: 4, Stop: 100}}
}

// replayTimelineGuarded runs replayTimeline, failing the test if it never
// returns (a guard against a hang, not a timing).
func replayTimelineGuarded(t *testing.T, ctx context.Context, conn sqlSession, g []ReplayRange) error {
	t.Helper()
	res := make(chan error, 1)
	go func() {
		res <- replayTimeline(ctx, conn, g, 1, replayOptions{Log: zerolog.Nop()}, func(replication.Position, bool) {})
	}()
	select {
	case err := <-res:
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("replayTimeline never returned")
		return nil
	}
}

// TestReplayTimelineCancelledWhileServeStops: the restore is cancelled
// (SIGTERM) while the replay waits, so the private serve stops too; the
// wait sees either first, and replayTimeline returns the cancellation,
// with the replication connection removed, instead of hanging. Repeated:
// which of the two the wait sees first is up to select.
func TestReplayTimelineCancelledWhileServeStops(t *testing.T) {
	for i := range 20 {
		ctx, cancel := context.WithCancel(t.Context())
		f := &fakeSession{status: func(port int) map[string]string {
			cancel()
			// Until the serve has stopped listening: both are ready.
			for {
				c, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
				if err != nil {
					break
				}
				c.Close()
				time.Sleep(time.Millisecond)
			}
			time.Sleep(10 * time.Millisecond) // Serve returns after its listener closes
			return nil
		}}
		err := replayTimelineGuarded(t, ctx, f, oneRange(t))
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("run %d: %v, want context.Canceled", i, err)
		}
		if s := f.statements(); s[len(s)-1] != "RESET SLAVE '"+serveConnection+"' ALL" {
			t.Fatalf("run %d: the replication connection was not removed: %q", i, s)
		}
	}
}

// TestReplayTimelineStartFails: when START SLAVE fails (a misconfigured
// server), the connection CHANGE MASTER made is removed, so nothing on the
// server points at binarc's stopped serve.
func TestReplayTimelineStartFails(t *testing.T) {
	f := &fakeSession{fail: "START SLAVE"}
	err := replayTimelineGuarded(t, t.Context(), f, oneRange(t))
	if err == nil || !strings.Contains(err.Error(), "START SLAVE") {
		t.Fatalf("replayTimeline: %v, want the START SLAVE error", err)
	}
	s := f.statements()
	if want := "RESET SLAVE '" + serveConnection + "' ALL"; s[len(s)-1] != want {
		t.Fatalf("statements after a failed START SLAVE: %q; want the last to be %s", s, want)
	}
	if pw := regexp.MustCompile(`MASTER_PASSWORD='([0-9a-f]+)'`).FindStringSubmatch(s[0]); pw == nil || strings.Contains(err.Error(), pw[1]) {
		t.Fatalf("the error holds the password, or none was sent: %v", err)
	}
}
