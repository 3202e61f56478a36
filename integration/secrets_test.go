package integration

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/binarc/binarc/integration/testenv"
)

// TestPasswordsNeverShown runs every command (stream, snapshot, prune, ls,
// verify, binlog events and fetch, restore) with known secrets (the source's, the target's, the
// S3 secret key, a user's password inside the archived binlog) and
// samples /proc all along: no secret shows in any output, log line or
// command line of binarc and its children (mariadb-binlog, mariadb). A
// statement with terminal escape sequences and a CREATE USER … IDENTIFIED
// BY are printed by binlog events and the restore plan escaped and
// redacted. URLs whose password holds '/' or '#' never leak.
func TestPasswordsNeverShown(t *testing.T) {
	e := newEnv(t, testenv.MariaDBOptions{})
	const userPass, targetPass = "Hunter2-user-pass", "target-Pa55-word"
	secrets := []string{replPass, userPass, targetPass, e.s3.SecretKey, "topsecret", "s3cr#et"}
	w := watchProcs("", secrets...)
	check := func(what, out string) {
		t.Helper()
		for _, s := range secrets {
			if strings.Contains(out, s) {
				t.Fatalf("%s printed the secret %q:\n%s", what, s, out)
			}
		}
		if strings.Contains(out, "\x1b") {
			t.Fatalf("%s printed a raw escape character:\n%q", what, out)
		}
	}

	p := e.start(e.streamArgs()...)
	p.waitLog(t, "streaming from the primary", time.Minute)
	e.primary.Exec(t, "CREATE DATABASE app", "CREATE TABLE app.t (s TEXT) ENGINE=InnoDB",
		"SET SESSION binlog_format=STATEMENT",
		"INSERT INTO app.t VALUES ('\x1b[2K\x1b[1A\rerased-line')",
		fmt.Sprintf("CREATE USER 'app'@'%%' IDENTIFIED BY '%s'", userPass))
	e.waitArchived(time.Minute)
	p.stop(t)
	check("stream", p.out.String())

	store := []string{"--store", e.store, "--cluster", e.cluster}
	out, code := e.run(append([]string{"binlog", "events"}, store...)...)
	if code != 0 || !strings.Contains(out, "<redacted>") || !strings.Contains(out, `\x1b[2K`) {
		t.Fatalf("binlog events exited %d; want the CREATE USER redacted and the escapes shown as \\x1b:\n%s", code, out)
	}
	check("binlog events", out)
	for _, args := range [][]string{{"ls"}, {"verify"}, {"binlog", "fetch", "--dir", t.TempDir()}} {
		out, code := e.run(append(args, store...)...)
		if code != 0 {
			t.Fatalf("%v exited %d:\n%s", args, code, out)
		}
		check(strings.Join(args, " "), out)
	}

	// A logical snapshot of the primary (its password to mariadb-dump)
	// and a real prune (it takes a lease, probes the store).
	e.primary.Exec(t, fmt.Sprintf("CREATE USER '%s'@'127.0.0.1' IDENTIFIED BY '%s'", primUser, replPass),
		fmt.Sprintf("GRANT RELOAD, PROCESS, BINLOG MONITOR, SELECT, SHOW VIEW, TRIGGER, EVENT, SLAVE MONITOR ON *.* TO '%s'@'127.0.0.1'", primUser))
	out, code = e.run(append([]string{"snapshot", "--source", e.primary.SourceURL(primUser, ""), "--allow-primary", "--method", "logical"}, store...)...)
	if code != 0 {
		t.Fatalf("snapshot exited %d:\n%s", code, out)
	}
	check("snapshot", out)
	out, code = e.run(append([]string{"prune", "--keep", "30d"}, store...)...)
	if code != 0 {
		t.Fatalf("prune exited %d:\n%s", code, out)
	}
	check("prune", out)

	target := testenv.StartMariaDB(t, testenv.MariaDBOptions{ServerID: 99, NoLogBin: true})
	target.Exec(t, fmt.Sprintf("CREATE USER 'restorer'@'127.0.0.1' IDENTIFIED BY '%s'", targetPass),
		"GRANT ALL ON *.* TO 'restorer'@'127.0.0.1' WITH GRANT OPTION")
	first := e.primary.Query(t, "SHOW BINARY LOGS")[0][0]
	out, code = e.runEnv([]string{"BINARC_TARGET_PASSWORD=" + targetPass}, append([]string{"restore", "--from", first + ":4", "--to", "latest",
		"--target", "mysql://restorer@" + target.Addr(), "--log-level", "debug"}, store...)...)
	if code != 0 || !strings.Contains(out, "<redacted>") {
		t.Fatalf("restore --target exited %d; want a plan with the password redacted:\n%s", code, out)
	}
	check("restore --target", out)
	if rows := target.Query(t, "SELECT COUNT(*) FROM mysql.user WHERE user = 'app'"); rows[0][0] != "1" {
		t.Fatalf("the replayed CREATE USER is not on the target: %v", rows)
	}

	// A password in argv: a warning, and never echoed, even when the
	// password holds characters a URL parser stops at.
	out, code = e.run(append([]string{"restore", "--from", first + ":4", "--to", "latest", "--dry-run",
		"--target", "mysql://restorer:1234/topsecret@" + target.Addr()}, store...)...)
	if code != 0 || !strings.Contains(out, "target URL carries a password") {
		t.Fatalf("restore --target with a password in the URL exited %d; want a warning:\n%s", code, out)
	}
	check("restore --target with a password in argv", out)
	for _, src := range []string{"mysql://binarc:1234/topsecret@db1:99999", "mysql://binarc:s3cr#et@db1:0"} {
		out, code := e.run("stream", "--source", src, "--store", e.store, "--cluster", e.cluster)
		if code == 0 {
			t.Fatalf("stream --source %s: accepted", src)
		}
		check("stream with a bad source URL", strings.ReplaceAll(out, src, ""))
	}
	_, leaks := w.done()
	sawArgv := false
	for _, l := range leaks {
		sawArgv = sawArgv || strings.Contains(l, "--target mysql://restorer:1234/topsecret@")
		// The bad-URL runs above put those on binarc's own command line on
		// purpose; anything else is a leak.
		if !strings.Contains(l, "stream --source mysql://binarc:") && !strings.Contains(l, "--target mysql://restorer:1234/topsecret@") {
			t.Fatalf("a secret showed in a command line: %s", l)
		}
	}
	if !sawArgv {
		t.Fatal("the /proc sampler never saw the password given in argv: it does not watch")
	}
}
