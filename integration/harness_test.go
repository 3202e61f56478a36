// Package integration holds end-to-end tests of the binarc binary against
// real servers: MariaDB primaries started by testenv and a versitygw S3
// server. Nothing here is mocked.
package integration

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/integration/testenv"
	"github.com/binarc/binarc/replication"
	gomysql "github.com/go-mysql-org/go-mysql/replication"
)

var binarcPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "binarc-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binarcPath = filepath.Join(dir, "binarc")
	// The test hooks (testhooks_on.go) are compiled in for the tests only.
	args := []string{"build", "-tags", "binarc_testhooks", "-o", binarcPath}
	if raceEnabled {
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, "../cmd/binarc")...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building binarc:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// plainBinarc is binarc built without the race detector, for the tests
// that bound its memory: the race detector's shadow memory multiplies
// binarc's RSS. Built on first use, beside binarcPath, when the tests run
// with -race (make test); otherwise binarcPath is that binary.
var plainBinarc struct {
	once sync.Once
	path string
	err  error
}

func plainBinarcPath(t *testing.T) string {
	t.Helper()
	if !raceEnabled {
		return binarcPath
	}
	plainBinarc.once.Do(func() {
		path := filepath.Join(filepath.Dir(binarcPath), "binarc-norace")
		out, err := exec.Command("go", "build", "-tags", "binarc_testhooks", "-o", path, "../cmd/binarc").CombinedOutput()
		if err != nil {
			plainBinarc.err = fmt.Errorf("%v:\n%s", err, out)
			return
		}
		plainBinarc.path = path
	})
	if plainBinarc.err != nil {
		t.Fatalf("building binarc without the race detector: %v", plainBinarc.err)
	}
	return plainBinarc.path
}

const (
	replUser = "binarc"
	replPass = "s3cret-Pa55"
)

// env is one test's world: a primary, an S3 server and a cluster name.
type env struct {
	t       *testing.T
	primary *testenv.MariaDB
	s3      *testenv.S3Server
	store   string // store URL
	cluster string
}

func newEnv(t *testing.T, opts testenv.MariaDBOptions) *env {
	t.Helper()
	p := testenv.StartMariaDB(t, opts)
	p.CreateReplicationUser(t, replUser, replPass)
	s := testenv.StartS3(t)
	return &env{t: t, primary: p, s3: s, store: s.StoreURL("archive"), cluster: "main"}
}

// proc is a running binarc.
type proc struct {
	cmd    *exec.Cmd
	out    *syncBuffer
	done   chan struct{}
	exitEr error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// binarcEnv is the environment every binarc the tests run gets: the S3
// credentials and the source password, never on the command line.
func (e *env) binarcEnv() []string {
	return append(append(os.Environ(), e.s3.Env()...), "BINARC_SOURCE_PASSWORD="+replPass, "BINARC_LOG_FORMAT=json")
}

// start runs binarc with args in the background.
func (e *env) start(args ...string) *proc {
	e.t.Helper()
	return e.startEnv(nil, args...)
}

// startEnv is start with extra environment variables, which override the
// defaults.
func (e *env) startEnv(extraEnv []string, args ...string) *proc {
	e.t.Helper()
	return e.startBinary(binarcPath, extraEnv, args...)
}

// startBinary is startEnv running the binarc binary at path.
func (e *env) startBinary(path string, extraEnv []string, args ...string) *proc {
	e.t.Helper()
	cmd := exec.Command(path, args...)
	cmd.Env = append(e.binarcEnv(), extraEnv...)
	p := &proc{cmd: cmd, out: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		e.t.Fatalf("start binarc: %v", err)
	}
	go func() {
		p.exitEr = cmd.Wait()
		close(p.done)
	}()
	e.t.Cleanup(func() {
		p.kill()
		if e.t.Failed() {
			e.t.Logf("binarc %v output:\n%s", args, tail(p.out.String(), 6000))
		}
	})
	return p
}

func (p *proc) kill() {
	select {
	case <-p.done:
	default:
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.done
	}
}

// running fails the test, with why and the output, if the process has
// exited.
func (p *proc) running(t *testing.T, why string) {
	t.Helper()
	select {
	case <-p.done:
		t.Fatalf("%s:\n%s", why, tail(p.out.String(), 4000))
	default:
	}
}

// waitLog waits until the process logged a line whose message contains
// substr.
func (p *proc) waitLog(t *testing.T, substr string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for len(logLines(p.out.String(), substr)) == 0 {
		select {
		case <-p.done:
			t.Fatalf("binarc exited before logging %q:\n%s", substr, tail(p.out.String(), 4000))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("binarc did not log %q within %s:\n%s", substr, timeout, tail(p.out.String(), 4000))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop sends SIGTERM and waits for a clean exit.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		t.Fatalf("binarc did not stop within 60s of SIGTERM:\n%s", tail(p.out.String(), 4000))
	}
	if p.exitEr != nil {
		t.Fatalf("binarc exited with %v after SIGTERM:\n%s", p.exitEr, tail(p.out.String(), 4000))
	}
}

// run runs binarc to completion and returns its output and exit code.
func (e *env) run(args ...string) (string, int) {
	e.t.Helper()
	return e.runEnv(nil, args...)
}

// runEnv is run with extra environment variables, which override the
// defaults.
func (e *env) runEnv(extraEnv []string, args ...string) (string, int) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binarcPath, args...)
	cmd.Env = append(e.binarcEnv(), extraEnv...)
	out, err := cmd.CombinedOutput()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			e.t.Fatalf("run binarc %v: %v", args, err)
		}
		code = ee.ExitCode()
	}
	return string(out), code
}

func (e *env) streamArgs(extra ...string) []string {
	return append([]string{"stream",
		"--source", e.primary.SourceURL(replUser, ""),
		"--store", e.store, "--cluster", e.cluster,
		"--flush-interval", "200ms", "--segment-size", "256KiB",
	}, extra...)
}

// catalog opens the archive in-process to watch it.
func (e *env) catalog() archive.Catalog {
	e.t.Helper()
	st, err := e.s3.OpenStore(context.Background(), e.store)
	if err != nil {
		e.t.Fatal(err)
	}
	return archive.Catalog{Store: st, Layout: archive.Layout{Cluster: e.cluster}}
}

// waitArchived waits until the newest timeline holds every byte of every
// binlog file the primary has, the last one up to its current size. It
// first lets the primary settle: after a rotation MariaDB writes a binlog
// checkpoint event by itself, once the old file's transactions are durable
// (when it also clears the old file's in-use flag).
func (e *env) waitArchived(timeout time.Duration) {
	e.t.Helper()
	waitSettled(e.t, e.primary.BinlogFiles(e.t))
	cat := e.catalog()
	deadline := time.Now().Add(timeout)
	var why string
	for time.Now().Before(deadline) {
		why = e.archivedState(cat)
		if why == "" {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	e.t.Fatalf("archive did not catch up with the primary within %s: %s", timeout, why)
}

func (e *env) archivedState(cat archive.Catalog) string {
	ctx := context.Background()
	tls, err := cat.Describe(ctx)
	if err != nil {
		return err.Error()
	}
	if len(tls) == 0 {
		return "no timeline yet"
	}
	files := map[string]*archive.FileState{}
	for _, f := range tls[len(tls)-1].Files {
		files[f.File] = f
	}
	rows := e.primary.Query(e.t, "SHOW BINARY LOGS")
	// A timeline that follows another may start at a later file of the
	// new primary (its older ones are in the archive already).
	if tl := tls[len(tls)-1]; tl.Info != nil && tl.Info.Previous != nil {
		for len(rows) > 1 && replication.CompareBinlogNames(rows[0][0], tl.Info.StartFile) < 0 {
			rows = rows[1:]
		}
	}
	for i, r := range rows {
		f := files[r[0]]
		if f == nil {
			return "not archived yet: " + r[0]
		}
		var size uint64
		fmt.Sscan(r[1], &size)
		if f.Size != size {
			return fmt.Sprintf("%s: archived %d of %d bytes", r[0], f.Size, size)
		}
		if i < len(rows)-1 && !f.Complete {
			return r[0] + ": not yet indexed as complete"
		}
	}
	return ""
}

// waitCompacted waits until every complete file of the newest timeline is
// stored as one compacted object, its segments deleted.
func (e *env) waitCompacted(timeout time.Duration) {
	e.t.Helper()
	cat := e.catalog()
	ctx := context.Background()
	deadline := time.Now().Add(timeout)
	for {
		tls, err := cat.Timelines(ctx)
		if err != nil {
			e.t.Fatal(err)
		}
		files, err := cat.Files(ctx, tls[len(tls)-1])
		if err != nil {
			e.t.Fatal(err)
		}
		var pending []string
		for _, f := range files {
			if f.Indexed && !f.Compacted {
				pending = append(pending, f.Name)
				continue
			}
			if f.Compacted {
				if segs, _ := cat.Segments(ctx, tls[len(tls)-1], f.Name); len(segs) > 0 {
					pending = append(pending, f.Name+" (segments not yet deleted)")
				}
			}
		}
		if len(pending) == 0 {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("not compacted within %s: %v", timeout, pending)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// compareWithPrimary fetches every archived file with binarc binlog fetch
// (and fetchArgs) and compares it with the primary's file on disk, byte for byte. It
// returns the number of files compared.
func (e *env) compareWithPrimary(fetchArgs ...string) int {
	e.t.Helper()
	dir := e.t.TempDir()
	out, code := e.run(append([]string{"binlog", "fetch", "--store", e.store, "--cluster", e.cluster, "--dir", dir}, fetchArgs...)...)
	if code != 0 {
		e.t.Fatalf("binlog fetch failed (%d):\n%s", code, out)
	}
	primaryFiles := e.primary.BinlogFiles(e.t)
	if len(primaryFiles) == 0 {
		e.t.Fatal("primary has no binlog files")
	}
	waitClosed(e.t, primaryFiles[:len(primaryFiles)-1])
	for _, pf := range primaryFiles {
		want, err := os.ReadFile(pf)
		if err != nil {
			e.t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(dir, filepath.Base(pf)))
		if err != nil {
			e.t.Fatalf("primary file %s was not fetched: %v", filepath.Base(pf), err)
		}
		if !bytes.Equal(got, want) {
			e.t.Fatalf("%s: archived copy differs from the primary's: %s", filepath.Base(pf), firstDiff(got, want))
		}
	}
	// Every fetched file must read cleanly with the server's own tool.
	mb := e.primary.MariadbBinlog()
	for _, pf := range primaryFiles {
		cmd := exec.Command(mb, "--no-defaults", filepath.Join(dir, filepath.Base(pf)))
		cmd.Stdout = nil
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			e.t.Fatalf("%s cannot read the fetched %s: %v\n%s", mb, filepath.Base(pf), err, stderr.String())
		}
	}
	return len(primaryFiles)
}

// waitClosed waits until the primary has closed each file that ends with
// a ROTATE or STOP event: MariaDB clears the format description's in-use
// flag lazily, once the file's transactions have reached a binlog
// checkpoint (a "delayed close"), not at rotation. A file that ended in a
// crash of the primary keeps the flag for good.
func waitClosed(t *testing.T, files []string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for _, f := range files {
		for {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var last gomysql.EventType
			if err := replication.Events(b, 0, func(_ uint64, h replication.Header, _ []byte) error {
				last = h.Type
				return nil
			}); err != nil {
				t.Fatalf("primary's %s: %v", f, err)
			}
			if !replication.IsFileEnd(last) || b[replication.InUseFlagOffset] == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the primary did not close %s (in-use flag still set after 60s)", f)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// waitSettled waits until the primary has nothing more to write by itself:
// every closed file's in-use flag cleared, and the current file holding a
// binlog checkpoint event that names the current file (MariaDB writes one,
// asynchronously, once every transaction of the earlier files is durable in
// the engine; it is the last event it writes without a client asking).
func waitSettled(t *testing.T, files []string) {
	t.Helper()
	waitClosed(t, files[:len(files)-1])
	cur := files[len(files)-1]
	deadline := time.Now().Add(60 * time.Second)
	for {
		b, err := os.ReadFile(cur)
		if err != nil {
			t.Fatal(err)
		}
		var lastCheckpoint string
		_ = replication.Events(b, 0, func(_ uint64, h replication.Header, raw []byte) error {
			if h.Type == gomysql.MARIADB_BINLOG_CHECKPOINT_EVENT && len(raw) >= replication.HeaderLen+4 {
				n := binary.LittleEndian.Uint32(raw[replication.HeaderLen:])
				if name := raw[replication.HeaderLen+4:]; int(n) <= len(name) {
					lastCheckpoint = string(name[:n])
				}
			}
			return nil
		})
		if lastCheckpoint == filepath.Base(cur) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the primary did not write a binlog checkpoint for %s within 60s (last names %q)", cur, lastCheckpoint)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func firstDiff(got, want []byte) string {
	n := min(len(got), len(want))
	for i := 0; i < n; i++ {
		if got[i] != want[i] {
			return fmt.Sprintf("first difference at offset %d (got %#x, want %#x); sizes %d vs %d", i, got[i], want[i], len(got), len(want))
		}
	}
	return fmt.Sprintf("one is a prefix of the other: sizes %d (archived) vs %d (primary)", len(got), len(want))
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// logLines returns the JSON log lines of a binarc run whose message
// contains substr.
func logLines(out, substr string) []map[string]any {
	var res []map[string]any
	for _, line := range strings.Split(out, "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) != nil {
			continue
		}
		if msg, _ := m["message"].(string); strings.Contains(msg, substr) {
			res = append(res, m)
		}
	}
	return res
}
