package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	"github.com/go-mysql-org/go-mysql/mysql"
	gomysql "github.com/go-mysql-org/go-mysql/replication"
)

// clientsEnv is an archive of a load with DDL and rotations, fully
// archived, the primary settled (nothing more it writes by itself), and
// binarc serve on it.
func clientsEnv(t *testing.T) (*env, *proc, int) {
	t.Helper()
	e, _ := newLoadedEnv(t, 60)
	waitSettled(t, e.primary.BinlogFiles(t))
	e.waitArchived(time.Minute)
	s, port := e.startServe(t)
	return e, s, port
}

// clientCnf writes an option file with the account, so that no password
// is on a command line.
func clientCnf(t *testing.T, user, password string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "client.cnf")
	if err := os.WriteFile(p, []byte(fmt.Sprintf("[client]\nuser=%s\npassword=%s\n", user, password)), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// remoteBinlog runs mariadb-binlog --read-from-remote-server against
// port with args and returns its output; it must return by itself within
// a minute.
func remoteBinlog(t *testing.T, e *env, cnf string, port int, dir string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	all := append([]string{"--defaults-file=" + cnf, "--read-from-remote-server", "--host=127.0.0.1", fmt.Sprintf("--port=%d", port)}, args...)
	cmd := exec.CommandContext(ctx, e.primary.MariadbBinlog(), all...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("mariadb-binlog %v did not return by itself within a minute (stderr: %s)", args, stderr.String())
	}
	if err != nil {
		t.Fatalf("mariadb-binlog %v: %v\n%s", args, err, stderr.String())
	}
	return stdout.String()
}

// TestServeMariadbBinlog: mariadb-binlog reads binarc serve as it reads a
// primary. --raw --to-last-log (a non-blocking dump) returns by itself
// with every complete file equal to the primary's byte for byte; without
// --raw it prints the statements it prints from the primary's own files;
// --stop-never against serve --follow follows the archive as it grows and
// exits when serve stops.
func TestServeMariadbBinlog(t *testing.T) {
	e, _, port := clientsEnv(t)
	files := e.primary.BinlogFiles(t)
	first := filepath.Base(files[0])
	cnf := clientCnf(t, "binarc", servePass)

	raw := t.TempDir()
	remoteBinlog(t, e, cnf, port, raw, "--raw", "--to-last-log", first)
	for _, pf := range files[:len(files)-1] {
		want, err := os.ReadFile(pf)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(raw, filepath.Base(pf)))
		if err != nil {
			t.Fatalf("mariadb-binlog --raw did not write %s: %v", filepath.Base(pf), err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s from serve differs from the primary's: %s", filepath.Base(pf), firstDiff(got, want))
		}
	}

	// File by file: reading several files, mariadb-binlog frames each
	// with its own preamble; from a server, without --to-last-log, it
	// reads the one file named.
	// The primary's current file is read from the primary itself: on disk
	// its format description is marked in use, which a server clears when
	// it sends it.
	total := 0
	for i, pf := range files {
		fromServe := remoteBinlog(t, e, cnf, port, t.TempDir(), filepath.Base(pf))
		var fromFile []byte
		var err error
		if i < len(files)-1 {
			fromFile, err = exec.Command(e.primary.MariadbBinlog(), "--no-defaults", pf).Output()
		} else {
			rootCnf := clientCnf(t, e.primary.RootUser, e.primary.RootPassword)
			fromFile = []byte(remoteBinlog(t, e, rootCnf, e.primary.Port, t.TempDir(), filepath.Base(pf)))
		}
		if err != nil {
			t.Fatalf("mariadb-binlog on the primary's %s: %v", pf, err)
		}
		got, want := statements(fromServe), statements(string(fromFile))
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s: statements from serve (%d lines) differ from the primary's file (%d lines): %s", filepath.Base(pf), len(got), len(want), lineDiff(got, want))
		}
		total += len(want)
	}
	if total < 100 {
		t.Errorf("mariadb-binlog printed %d statement lines in all: the load is missing", total)
	}

	t.Run("stop-never follows", func(t *testing.T) {
		s, fport := e.startServe(t, "--follow")
		dir := t.TempDir()
		cmd := exec.Command(e.primary.MariadbBinlog(), "--defaults-file="+cnf, "--read-from-remote-server", "--host=127.0.0.1",
			fmt.Sprintf("--port=%d", fport), "--raw", "--stop-never", first)
		cmd.Dir = dir
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		defer func() {
			if cmd.ProcessState == nil {
				cmd.Process.Kill()
			}
		}()
		// The archive grows while mariadb-binlog is attached.
		if err := writeLoad(context.Background(), e.primary, loadOptions{From: 60, To: 90, FlushAt: 25}); err != nil {
			t.Fatal(err)
		}
		now := e.primary.BinlogFiles(t)
		waitClosed(t, now[:len(now)-1])
		e.waitArchived(time.Minute)
		newest := now[len(now)-2] // complete, written after the client attached
		want, _ := os.ReadFile(newest)
		deadline := time.Now().Add(time.Minute)
		for {
			got, _ := os.ReadFile(filepath.Join(dir, filepath.Base(newest)))
			if bytes.Equal(got, want) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("mariadb-binlog --stop-never did not receive %s from serve --follow (%d of %d bytes): %s", filepath.Base(newest), len(got), len(want), stderr.String())
			}
			time.Sleep(200 * time.Millisecond)
		}
		select {
		case err := <-done:
			t.Fatalf("mariadb-binlog --stop-never returned while serve was up: %v %s", err, stderr.String())
		default:
		}
		s.stop(t)
		select {
		case err := <-done:
			t.Logf("mariadb-binlog --stop-never exited when serve stopped: %v", err)
		case <-time.After(time.Minute):
			t.Fatal("mariadb-binlog --stop-never did not exit when serve stopped")
		}
	})
}

// statements is mariadb-binlog's output without its comment lines (event
// headers, positions, fake rotates), which name where an event was read.
func statements(out string) []string {
	var s []string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "#") || strings.TrimSpace(l) == "" {
			continue
		}
		s = append(s, l)
	}
	return s
}

func lineDiff(got, want []string) string {
	for i := 0; i < min(len(got), len(want)); i++ {
		if got[i] != want[i] {
			return fmt.Sprintf("line %d: got %q, want %q", i+1, got[i], want[i])
		}
	}
	return fmt.Sprintf("one is a prefix of the other (%d and %d lines)", len(got), len(want))
}

// answer is one query's result as a client sees it.
type answer struct {
	Names  []string
	Types  []byte
	Rows   [][]string
	ErrNum uint16
}

func ask(t *testing.T, c *client.Conn, q string) answer {
	t.Helper()
	r, err := c.Execute(q)
	var me *mysql.MyError
	if errors.As(err, &me) {
		return answer{ErrNum: me.Code}
	}
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer r.Close()
	var a answer
	if r.Resultset == nil {
		return a
	}
	for _, f := range r.Fields {
		a.Names, a.Types = append(a.Names, string(f.Name)), append(a.Types, f.Type)
	}
	for i := range r.Values {
		var row []string
		for j := range r.Fields {
			v, _ := r.GetString(i, j)
			row = append(row, v)
		}
		a.Rows = append(a.Rows, row)
	}
	return a
}

// TestServeAnswersAsPrimary asks binarc serve and the archived MariaDB
// 10.11 primary the same questions a CDC client asks before a dump, and
// compares column names, types and values; then dumps from both with
// each flag, capability and checksum setting and compares the streams
// event by event.
func TestServeAnswersAsPrimary(t *testing.T) {
	e, serve, port := clientsEnv(t)
	prim, err := client.Connect(e.primary.Addr(), e.primary.RootUser, e.primary.RootPassword, "")
	if err != nil {
		t.Fatal(err)
	}
	defer prim.Close()
	srv, err := client.Connect(fmt.Sprintf("127.0.0.1:%d", port), "binarc", servePass, "")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	for _, q := range []string{
		"SET @master_binlog_checksum='NONE', @mariadb_slave_capability=4",
		"SELECT @master_binlog_checksum, @mariadb_slave_capability",
		"SET @master_heartbeat_period=30000000000",
		"SELECT @master_heartbeat_period",
		"SET @slave_connect_state='0-1-5'",
		"SELECT @slave_connect_state",
		"SHOW BINARY LOGS",
		"SHOW MASTER STATUS",
		"SELECT @@version",
		"SELECT @@server_id",
		"SELECT @@GLOBAL.server_id",
		"SELECT @@server_uuid",
		"SELECT @@binlog_format",
		"SELECT @@binlog_row_image",
		"SELECT @@binlog_checksum",
		"SELECT @@global.binlog_checksum",
		"SELECT @@gtid_current_pos",
		"SELECT @@gtid_binlog_pos",
		"SELECT @@log_bin",
		"SELECT @@GLOBAL.gtid_domain_id",
		"SHOW VARIABLES LIKE 'server_id'",
		"SHOW GLOBAL VARIABLES LIKE 'BINLOG_CHECKSUM'",
		"SHOW VARIABLES LIKE 'binlog_format'",
		"SHOW GLOBAL VARIABLES LIKE 'binlog_row_image'",
		"SHOW VARIABLES LIKE 'log_bin'",
		"SHOW VARIABLES LIKE 'gtid_binlog_pos'",
		"SHOW VARIABLES LIKE 'gtid_current_pos'",
		"SHOW VARIABLES LIKE 'gtid_mode'",
		"SHOW VARIABLES LIKE 'server_uuid'",
		"SHOW GLOBAL VARIABLES LIKE 'rpl_semi_sync_master_enabled'",
		"SHOW GLOBAL STATUS LIKE 'Binlog_snapshot_file'",
		"SHOW GLOBAL STATUS LIKE 'Binlog_snapshot_position'",
		"SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_master_status'",
	} {
		want, got := ask(t, prim, q), ask(t, srv, q)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s:\n serve   %+v\n primary %+v", q, got, want)
		}
	}
	// What serve cannot answer it refuses, naming what it does.
	for q, msg := range map[string]string{
		"SELECT * FROM information_schema.COLUMNS WHERE TABLE_SCHEMA='app'": "Change data capture from the archive",
		"SHOW CREATE TABLE app.accounts":                                    "binarc restore",
		"SHOW FULL TABLES FROM app":                                         "schema",
		"SHOW VARIABLES LIKE 'innodb_buffer_pool_size'":                     "binarc serve does not know the variable",
		"SELECT COUNT(*) FROM app.accounts":                                 "cannot evaluate",
		"INSERT INTO app.accounts VALUES (1)":                               "answers only what replicas and CDC clients ask",
	} {
		if _, err := srv.Execute(q); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("%s: %v, want a refusal with %q", q, err, msg)
		}
	}
	compareDumps(t, e, port)
	// A client naming a database at the handshake (go-mysql's default
	// handler printed "Received: UseDB" for it): serve writes nothing but
	// its JSON log lines.
	named, err := client.Connect(fmt.Sprintf("127.0.0.1:%d", port), "binarc", servePass, "app")
	if err != nil {
		t.Fatal(err)
	}
	named.Close()
	time.Sleep(200 * time.Millisecond) // let the output of the closing connection arrive
	for _, l := range strings.Split(strings.TrimSpace(serve.out.String()), "\n") {
		if !strings.HasPrefix(l, "{") {
			t.Errorf("serve wrote outside its logger: %q", l)
		}
	}
}

// dumpCase is one dump asked of the primary and of serve.
type dumpCase struct {
	name  string
	setup []string
	flags uint16
	file  string
}

// compareDumps dumps from the primary and from serve with each setting,
// non-blocking (both end with EOF at the binlog's end), and compares the
// events byte for byte.
func compareDumps(t *testing.T, e *env, port int) {
	files := e.primary.BinlogFiles(t)
	first, second := filepath.Base(files[0]), filepath.Base(files[1])
	replica := []string{"SET @master_binlog_checksum=@@global.binlog_checksum", "SET @mariadb_slave_capability=4"}
	gtid := e.primary.Query(t, "SELECT @@gtid_binlog_pos")[0][0]
	mid := strings.Split(gtid, "-")
	mid[2] = "20"
	const nonBlock, annotate = gomysql.BINLOG_DUMP_NON_BLOCK, gomysql.BINLOG_SEND_ANNOTATE_ROWS_EVENT
	for _, c := range []dumpCase{
		{"file, annotate", replica, nonBlock | annotate, first},
		{"file, no annotate", replica, nonBlock, first},
		{"NUL-terminated name", replica, nonBlock, second + "\x00"},
		{"empty name", replica, nonBlock | annotate, ""},
		{"checksum NONE (mariadb-binlog, go-mysql)", []string{"SET @master_binlog_checksum='NONE'", "SET @mariadb_slave_capability=4"}, nonBlock | annotate, second},
		{"capability 0", []string{"SET @master_binlog_checksum='NONE'"}, nonBlock, second},
		{"capability 1", []string{"SET @master_binlog_checksum='NONE'", "SET @mariadb_slave_capability=1"}, nonBlock, second},
		{"GTID from the start", append(replica, "SET @slave_connect_state=''"), nonBlock, ""},
		{"GTID mid-stream", append(replica, "SET @slave_connect_state='"+strings.Join(mid, "-")+"'"), nonBlock, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			want := rawDumpAll(t, e.primary.Addr(), e.primary.RootUser, e.primary.RootPassword, c)
			got := rawDumpAll(t, fmt.Sprintf("127.0.0.1:%d", port), "binarc", servePass, c)
			if len(want) < 20 {
				t.Fatalf("the primary sent %d events", len(want))
			}
			for i := 0; i < min(len(got), len(want)); i++ {
				if !bytes.Equal(got[i], want[i]) {
					t.Fatalf("event %d: serve sent %s %x\nthe primary %s %x", i, gomysql.EventType(got[i][4]), got[i][:min(len(got[i]), 64)],
						gomysql.EventType(want[i][4]), want[i][:min(len(want[i]), 64)])
				}
			}
			if len(got) != len(want) {
				t.Errorf("serve sent %d events, the primary %d", len(got), len(want))
			}
		})
	}
}

// rawDumpAll runs one non-blocking COM_BINLOG_DUMP and returns every event
// up to the EOF.
func rawDumpAll(t *testing.T, addr, user, password string, dc dumpCase) [][]byte {
	t.Helper()
	c, err := client.Connect(addr, user, password, "")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, q := range dc.setup {
		if _, err := c.Execute(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	c.ResetSequence()
	pkt := []byte{0, 0, 0, 0, mysql.COM_BINLOG_DUMP, 4, 0, 0, 0, byte(dc.flags), byte(dc.flags >> 8), 99, 0, 0, 0}
	if err := c.WritePacket(append(pkt, dc.file...)); err != nil {
		t.Fatal(err)
	}
	var evs [][]byte
	for {
		p, err := c.ReadPacket()
		if err != nil {
			t.Fatalf("%s after %d events: %v", addr, len(evs), err)
		}
		if p[0] == mysql.EOF_HEADER && len(p) < 9 {
			return evs
		}
		if p[0] != mysql.OK_HEADER {
			t.Fatalf("%s: %q", addr, p)
		}
		evs = append(evs, append([]byte(nil), p[1:]...))
		if len(evs) > 1_000_000 {
			t.Fatalf("%s: no EOF after a million events", addr)
		}
	}
}
