package integration

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/integration/testenv"
	core "github.com/binarc/binarc/internal/testenv"
	"github.com/binarc/binarc/replication"
	"github.com/klauspost/compress/zstd"
)

// reachableTempDir is a temporary directory the unprivileged user a
// restore runs its programs as (mysql) can reach: t.TempDir is 0700.
func reachableTempDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	noErr(t, core.OpenToOthers(dir))
	return dir
}

// measured is a finished binarc run: its output, exit code and peak RSS.
type measured struct {
	out    string
	code   int
	maxRSS int64 // bytes
}

// runMeasured runs binarc to completion and reports its peak resident
// memory: the VmHWM the test build writes at exit (getrusage of a child
// Go started would report this test process's own peak).
func (e *env) runMeasured(extraEnv []string, args ...string) measured {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binarcPath, args...)
	rssFile := filepath.Join(e.t.TempDir(), "peak-rss")
	cmd.Env = append(append(e.binarcEnv(), extraEnv...), "BINARC_TEST_PEAK_RSS_FILE="+rssFile)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	m := measured{out: out.String()}
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			e.t.Fatalf("run binarc %v: %v", args, err)
		}
		m.code = ee.ExitCode()
	}
	b, err := os.ReadFile(rssFile)
	kb, _, _ := strings.Cut(strings.TrimSpace(string(b)), " ")
	n, perr := strconv.ParseInt(kb, 10, 64)
	if err != nil || perr != nil || n <= 0 {
		e.t.Fatalf("binarc %v reported no peak RSS (%v %q):\n%s", args, err, b, m.out)
	}
	m.maxRSS = n << 10
	return m
}

// plantStatement rewrites, in the archive, the text of the query event
// holding marker to stmt (padded with spaces to the same length), with
// its CRC32 recomputed and the segment recompressed: what anyone who can
// write to the bucket can do, unseen by zstd's checksums and the event's.
func (e *snapEnv) plantStatement(marker, stmt string) {
	e.t.Helper()
	ctx := context.Background()
	cat := e.catalog()
	tls, err := cat.Describe(ctx)
	noErr(e.t, err)
	for _, fs := range tls[len(tls)-1].Files {
		for _, s := range fs.Segments {
			plain, err := cat.ReadSegment(ctx, s.Key)
			noErr(e.t, err)
			i := bytes.Index(plain, []byte(marker))
			if i < 0 {
				continue
			}
			q := bytes.LastIndex(plain[:i], []byte("INSERT INTO"))
			end := bytes.IndexByte(plain[i:], '\'') + i + 2 // past "')"
			if q < 0 || end-q < len(stmt) {
				e.t.Fatalf("planted statement %q does not fit in %q", stmt, plain[q:end])
			}
			copy(plain[q:end], stmt+strings.Repeat(" ", end-q-len(stmt)))
			fixed := false
			noErr(e.t, replication.Events(plain, s.Start, func(off uint64, h replication.Header, raw []byte) error {
				at := int(off - s.Start)
				if at <= q && q < at+len(raw) && !replication.HasChecksum(raw) {
					body := raw[:len(raw)-4]
					binary.LittleEndian.PutUint32(raw[len(raw)-4:], crc32.ChecksumIEEE(body))
					fixed = true
				}
				return nil
			}))
			if !fixed {
				e.t.Fatalf("no event to fix around the planted statement")
			}
			enc, err := zstd.NewWriter(nil, zstd.WithEncoderCRC(true))
			noErr(e.t, err)
			e.put(s.Key, enc.EncodeAll(plain, nil))
			return
		}
	}
	e.t.Fatalf("marker %q not found in the archive", marker)
}

// watchProcs samples /proc while a command runs: the uid of every
// mariadbd serving dir, and whether any process's command line holds one
// of secrets.
type procWatch struct {
	mu       sync.Mutex
	uids     []string
	leaks    []string
	stop     chan struct{}
	finished chan struct{}
}

func watchProcs(dir string, secrets ...string) *procWatch {
	w := &procWatch{stop: make(chan struct{}), finished: make(chan struct{})}
	go func() {
		defer close(w.finished)
		for {
			select {
			case <-w.stop:
				return
			default:
			}
			ents, _ := os.ReadDir("/proc")
			for _, en := range ents {
				if _, err := strconv.Atoi(en.Name()); err != nil {
					continue
				}
				cl, err := os.ReadFile(filepath.Join("/proc", en.Name(), "cmdline"))
				if err != nil {
					continue
				}
				w.mu.Lock()
				for _, s := range secrets {
					if s != "" && bytes.Contains(cl, []byte(s)) && binarcOrChild(en.Name(), cl) {
						w.leaks = append(w.leaks, string(bytes.ReplaceAll(cl, []byte{0}, []byte{' '})))
					}
				}
				if dir != "" && bytes.Contains(cl, []byte("--datadir="+dir+"\x00")) && bytes.Contains(cl, []byte("mariadbd")) {
					st, _ := os.ReadFile(filepath.Join("/proc", en.Name(), "status"))
					for _, line := range strings.Split(string(st), "\n") {
						if strings.HasPrefix(line, "Uid:") {
							w.uids = append(w.uids, strings.Fields(line)[1])
						}
					}
				}
				w.mu.Unlock()
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	return w
}

// binarcOrChild tells whether process pid, with command line cl, is a
// binarc or a program a binarc started.
func binarcOrChild(pid string, cl []byte) bool {
	if bytes.HasPrefix(cl, []byte(binarcPath+"\x00")) {
		return true
	}
	st, _ := os.ReadFile(filepath.Join("/proc", pid, "status"))
	for _, line := range strings.Split(string(st), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "PPid:" {
			pcl, _ := os.ReadFile(filepath.Join("/proc", f[1], "cmdline"))
			return bytes.HasPrefix(pcl, []byte(binarcPath+"\x00"))
		}
	}
	return false
}

func (w *procWatch) done() ([]string, []string) {
	close(w.stop)
	<-w.finished
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.uids, w.leaks
}

// TestRestoreSandbox plants, in a real archive, a SELECT … INTO OUTFILE
// and a LOAD DATA INFILE '/proc/self/environ' (query events rewritten with
// valid checksums), then restores a physical snapshot with binarc holding
// AWS and BINARC secrets in its environment: the temporary server runs as
// the mysql user (asserted from /proc while it runs), the planted
// statements fail on its --secure-file-priv, no file is created, and the
// data directory is wiped. Skipping the planted transactions, the restore
// completes and leaves a directory owned by mysql that a server starts
// on, without the secrets. Then a zstd bomb planted as a segment and as a
// compacted file: ls, binlog fetch, verify and restore fail clearly with a
// peak RSS under 200 MiB, writing nothing past the expected size.
func TestRestoreSandbox(t *testing.T) {
	t.Parallel()
	e := newSnapEnv(t)
	mysqlUser, err := user.Lookup("mysql")
	noErr(t, err)
	p := e.start(e.streamArgs("--no-compact")...)
	p.waitLog(t, "streaming from the primary", time.Minute)
	e.primary.Exec(t, "CREATE DATABASE app",
		"CREATE TABLE app.plant (id INT PRIMARY KEY, s TEXT) ENGINE=InnoDB",
		"CREATE TABLE app.loot (s LONGTEXT) ENGINE=InnoDB",
		"INSERT INTO app.plant VALUES (0, 'before')")
	e.caughtUpSnapshot(t, "snapshot", physUser)
	outDir := reachableTempDir(t)
	outfile := filepath.Join(outDir, "x.sh")
	pad := strings.Repeat("p", 120)
	var planted []string
	for i, marker := range []string{"PLANT-OUTFILE", "PLANT-ENVIRON"} {
		e.primary.Exec(t, "SET SESSION binlog_format=STATEMENT",
			fmt.Sprintf("INSERT INTO app.plant VALUES (%d, '%s%s')", i+1, marker, pad))
		planted = append(planted, lastGTID(e.primary.Query(t, "SELECT @@gtid_binlog_pos")[0][0]))
	}
	// A complete file holds the planted statements; the live one after.
	e.primary.Exec(t, "FLUSH BINARY LOGS")
	e.primary.Exec(t, "INSERT INTO app.plant VALUES (9, 'after')")
	e.waitArchived(time.Minute)
	p.stop(t)
	e.plantStatement("PLANT-OUTFILE", "SELECT '#!/bin/sh' INTO OUTFILE '"+outfile+"'")
	e.plantStatement("PLANT-ENVIRON", "LOAD DATA INFILE '/proc/self/environ' INTO TABLE app.loot")

	secrets := []string{"BINARC_SOURCE_PASSWORD=sandbox-source-secret", "AWS_SECRET_ACCESS_KEY_EXTRA=sandbox-aws-secret", "BINARC_TARGET_PASSWORD=sandbox-target-secret"}
	root := reachableTempDir(t)
	dir := filepath.Join(root, "restored")
	w := watchProcs(dir, "sandbox-source-secret", "sandbox-aws-secret", "sandbox-target-secret")
	m := e.runMeasured(secrets, "restore", "--store", e.store, "--cluster", e.cluster, "--datadir", dir, "--to", "latest")
	uids, leaks := w.done()
	if m.code == 0 {
		t.Fatalf("restore of an archive with planted statements succeeded:\n%s", m.out)
	}
	if !strings.Contains(m.out, "secure-file-priv") {
		t.Fatalf("restore failed, but not on --secure-file-priv:\n%s", tail(m.out, 3000))
	}
	if len(uids) == 0 {
		t.Fatalf("never saw the temporary server in /proc:\n%s", tail(m.out, 3000))
	}
	for _, u := range uids {
		if u != mysqlUser.Uid {
			t.Fatalf("the temporary server ran as uid %s; want mysql (%s)", u, mysqlUser.Uid)
		}
	}
	if len(leaks) > 0 {
		t.Fatalf("a secret showed in a command line: %v", leaks)
	}
	if _, err := os.Stat(outfile); !os.IsNotExist(err) {
		t.Fatalf("the planted SELECT … INTO OUTFILE created %s", outfile)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("the failed restore left %s", dir)
	}
	t.Logf("planted statements refused; temporary server uid %s", uids[0])

	// Skipping the planted transactions, the restore completes: the
	// directory is mysql's, a server starts on it, no secret in it.
	args := []string{"restore", "--store", e.store, "--cluster", e.cluster, "--datadir", dir, "--to", "latest"}
	for _, g := range planted {
		args = append(args, "--skip-gtid", g)
	}
	m = e.runMeasured(secrets, args...)
	if m.code != 0 {
		t.Fatalf("restore skipping the planted transactions exited %d:\n%s", m.code, tail(m.out, 4000))
	}
	st, err := os.Stat(filepath.Join(dir, "ibdata1"))
	noErr(t, err)
	if uid := st.Sys().(*syscall.Stat_t).Uid; strconv.Itoa(int(uid)) != mysqlUser.Uid {
		t.Fatalf("restored ibdata1 is owned by uid %d; want mysql", uid)
	}
	srv := testenv.StartMariaDBOn(t, dir, 77)
	if rows := srv.Query(t, "SELECT id, s FROM app.plant ORDER BY id"); len(rows) != 2 || rows[1][1] != "after" {
		t.Fatalf("restored app.plant: %v; want rows 0 and 9", rows)
	}
	if rows := srv.Query(t, "SELECT COUNT(*) FROM app.loot"); rows[0][0] != "0" {
		t.Fatalf("restored app.loot has %s rows", rows[0][0])
	}
	for _, s := range secrets {
		_, v, _ := strings.Cut(s, "=")
		if strings.Contains(m.out, v) {
			t.Fatalf("the restore printed a secret:\n%s", m.out)
		}
	}

	// Held with its temporary server up, then binarc SIGKILLed: the
	// server, which runs as mysql, dies with it (parent-death signal).
	held := filepath.Join(root, "held")
	holdArgs := []string{"restore", "--store", e.store, "--cluster", e.cluster, "--datadir", held, "--to", "latest"}
	for _, g := range planted {
		holdArgs = append(holdArgs, "--skip-gtid", g)
	}
	hp := e.startEnv(append(secrets, "BINARC_TEST_RESTORE_HOLD=2m"), holdArgs...)
	hp.waitLog(t, "BINARC_TEST_RESTORE_HOLD", 2*time.Minute)
	pids := serverPids(held)
	if len(pids) == 0 {
		t.Fatal("no temporary server found in /proc while the restore holds")
	}
	for _, pid := range pids {
		if uid := procField(pid, "Uid:"); uid != mysqlUser.Uid {
			t.Fatalf("the temporary server (pid %s) runs as uid %s; want mysql (%s)", pid, uid, mysqlUser.Uid)
		}
		if env, _ := os.ReadFile(filepath.Join("/proc", pid, "environ")); bytes.Contains(env, []byte("AWS_")) || bytes.Contains(env, []byte("BINARC_")) {
			t.Fatalf("the temporary server's environment holds binarc's: %q", env)
		}
	}
	hp.kill()
	deadline := time.Now().Add(15 * time.Second)
	for _, pid := range pids {
		for st := procField(pid, "State:"); st != "" && st != "Z"; st = procField(pid, "State:") {
			if time.Now().After(deadline) {
				t.Fatalf("the temporary server (pid %s) outlived the SIGKILLed binarc (state %s)", pid, st)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	e.checkBombs(t)
}

// serverPids lists the mariadbd processes serving dir.
func serverPids(dir string) []string {
	var pids []string
	ents, _ := os.ReadDir("/proc")
	for _, en := range ents {
		cl, err := os.ReadFile(filepath.Join("/proc", en.Name(), "cmdline"))
		if err == nil && bytes.Contains(cl, []byte("--datadir="+dir+"\x00")) && bytes.Contains(cl, []byte("mariadbd")) {
			pids = append(pids, en.Name())
		}
	}
	return pids
}

// procField is the first word of a /proc/PID/status field ("" once the
// process is gone).
func procField(pid, name string) string {
	st, _ := os.ReadFile(filepath.Join("/proc", pid, "status"))
	for _, line := range strings.Split(string(st), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == name {
			return f[1]
		}
	}
	return ""
}

// checkBombs plants a zstd bomb as the live file's last segment, then as
// a compacted file, and runs ls, binlog fetch, verify and restore on
// each: they fail naming the object, in bounded memory, and write nothing
// past the expected size.
func (e *snapEnv) checkBombs(t *testing.T) {
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderCRC(true))
	noErr(t, err)
	frame := enc.EncodeAll(make([]byte, 64<<20), nil)
	// 1 GiB of zeros in about 110 KiB: small enough to pass as a segment
	// of a few hundred bytes (a zstd object may be a little larger than
	// its content), so the decoder's bound is what stops it.
	bomb := bytes.Repeat(frame, 16)
	t.Logf("zstd bomb: %d KiB decoding to 1 GiB", len(bomb)>>10)
	ctx := context.Background()
	cat := e.catalog()
	tls, err := cat.Describe(ctx)
	noErr(t, err)
	files := tls[len(tls)-1].Files
	live := files[len(files)-1]
	var complete *archive.FileState
	for _, f := range files {
		if f.Complete && f.CompactedKey == "" {
			complete = f
		}
	}
	if live.Complete || complete == nil {
		t.Fatalf("want a live file and a complete one; have %d files", len(files))
	}
	const limit = 200 << 20
	expect := func(what string, m measured, wantFail bool, substr string) {
		t.Helper()
		if m.maxRSS > limit {
			t.Fatalf("%s: peak RSS %d MiB; want under 200", what, m.maxRSS>>20)
		}
		if wantFail && (m.code == 0 || !strings.Contains(m.out, substr)) {
			t.Fatalf("%s exited %d; want a failure naming %q:\n%s", what, m.code, substr, tail(m.out, 3000))
		}
		t.Logf("%s: exit %d, peak RSS %d MiB", what, m.code, m.maxRSS>>20)
	}
	store := []string{"--store", e.store, "--cluster", e.cluster}
	fetchDir := reachableTempDir(t)
	checkFetchDir := func(name string, size uint64) {
		t.Helper()
		ents, _ := os.ReadDir(fetchDir)
		for _, en := range ents {
			info, _ := en.Info()
			if info != nil && uint64(info.Size()) > size {
				t.Fatalf("fetch of %s wrote %s of %d bytes, past its %d", name, en.Name(), info.Size(), size)
			}
		}
	}
	restoreArgs := append([]string{"restore", "--to", "latest", "--dry-run"}, store...)

	seg := live.Segments[len(live.Segments)-1]
	orig := e.get(seg.Key)
	e.put(seg.Key, bomb)
	expect("ls (segment bomb)", e.runMeasured(nil, append([]string{"ls"}, store...)...), true, "zstd bomb")
	expect("binlog fetch (segment bomb)", e.runMeasured(nil, append([]string{"binlog", "fetch", "--dir", fetchDir, live.File}, store...)...), true, "zstd bomb")
	checkFetchDir(live.File, live.Size)
	expect("verify (segment bomb)", e.runMeasured(nil, append([]string{"verify"}, store...)...), true, seg.Key)
	expect("restore (segment bomb)", e.runMeasured(nil, restoreArgs...), true, "zstd bomb")
	e.put(seg.Key, orig)

	key := e.layout().CompactedKey(complete.Timeline, complete.File)
	e.put(key, bomb)
	expect("ls (compacted bomb)", e.runMeasured(nil, append([]string{"ls"}, store...)...), false, "")
	expect("binlog fetch (compacted bomb)", e.runMeasured(nil, append([]string{"binlog", "fetch", "--dir", fetchDir, complete.File}, store...)...), true, "zstd bomb")
	checkFetchDir(complete.File, complete.Size)
	expect("verify (compacted bomb)", e.runMeasured(nil, append([]string{"verify"}, store...)...), true, key)
	expect("restore (compacted bomb)", e.runMeasured(nil, restoreArgs...), true, "zstd bomb")
	noErr(t, e.objStore().Delete(ctx, key))
}
