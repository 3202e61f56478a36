package integration

import (
	"strings"
	"testing"
	"time"

	"github.com/binarc/binarc/integration/testenv"
)

// expectFailure checks a binarc run failed with a non-zero exit, said
// everything in want, and leaked no password.
func expectFailure(t *testing.T, out string, code int, want ...string) {
	t.Helper()
	t.Logf("exit %d: %s", code, out)
	if code == 0 {
		t.Fatalf("binarc succeeded; want a failure mentioning %q:\n%s", want, out)
	}
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
	for _, secret := range []string{replPass, "wrong-Pa55"} {
		if strings.Contains(out, secret) {
			t.Errorf("output leaks a password:\n%s", out)
		}
	}
}

func TestBadInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testenv.MariaDBOptions{})
	t.Run("wrong password", func(t *testing.T) {
		out, code := e.runEnv([]string{"BINARC_SOURCE_PASSWORD=wrong-Pa55"}, e.streamArgs()...)
		expectFailure(t, out, code, "access denied", "BINARC_SOURCE_PASSWORD")
	})
	t.Run("password file", func(t *testing.T) {
		out, code := e.runEnv([]string{"BINARC_SOURCE_PASSWORD="}, e.streamArgs("--source-password-file", "/nonexistent/pw")...)
		expectFailure(t, out, code, "--source-password-file")
	})
	// A user with one of the two grants binarc stream needs: the error
	// names the other.
	for _, c := range []struct{ name, user, grant, missing string }{
		{"missing replication grant", "monitor", "BINLOG MONITOR", "REPLICATION SLAVE"},
		{"missing binlog monitor grant", "replonly", "REPLICATION SLAVE", "BINLOG MONITOR"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e.primary.Exec(t,
				"CREATE USER '"+c.user+"'@'127.0.0.1' IDENTIFIED BY '"+replPass+"'",
				"GRANT "+c.grant+" ON *.* TO '"+c.user+"'@'127.0.0.1'")
			args := e.streamArgs()
			args[2] = e.primary.SourceURL(c.user, "")
			out, code := e.run(args...)
			expectFailure(t, out, code, c.missing, "GRANT")
		})
	}
	t.Run("missing bucket", func(t *testing.T) {
		out, code := e.run("stream", "--source", e.primary.SourceURL(replUser, ""), "--store", "s3://no-such-bucket/x", "--cluster", "main")
		expectFailure(t, out, code, "no-such-bucket", "does not exist")
	})
	t.Run("unreadable store URL", func(t *testing.T) {
		out, code := e.run("stream", "--source", e.primary.SourceURL(replUser, ""), "--store", "ftp://host/x", "--cluster", "main")
		expectFailure(t, out, code, "ftp", "s3://")
		if code != 2 {
			t.Errorf("exit %d for bad input; want 2", code)
		}
	})
	t.Run("bad source URL", func(t *testing.T) {
		out, code := e.run("stream", "--source", "postgres://u:wrong-Pa55@h/db", "--store", e.store, "--cluster", "main")
		expectFailure(t, out, code, "postgres", "mysql://USER")
	})
	t.Run("bad cluster name", func(t *testing.T) {
		out, code := e.run("stream", "--source", e.primary.SourceURL(replUser, ""), "--store", e.store, "--cluster", "../etc")
		expectFailure(t, out, code, "--cluster")
	})
	t.Run("bad segment size", func(t *testing.T) {
		out, code := e.run(e.streamArgs("--segment-size", "lots")...)
		expectFailure(t, out, code, "lots", "16MiB")
	})
	t.Run("start at a file the primary lacks", func(t *testing.T) {
		args := e.streamArgs("--start-at", "mysql-bin.999999")
		for i, a := range args {
			if a == e.cluster {
				args[i] = "fresh"
			}
		}
		out, code := e.run(args...)
		expectFailure(t, out, code, "mysql-bin.999999", "SHOW BINARY LOGS")
	})
}

func TestLogBinOff(t *testing.T) {
	t.Parallel()
	p := testenv.StartMariaDB(t, testenv.MariaDBOptions{NoLogBin: true})
	p.CreateReplicationUser(t, replUser, replPass)
	e := &env{t: t, primary: p, s3: testenv.StartS3(t), cluster: "main"}
	e.store = e.s3.StoreURL("archive")
	out, code := e.run(e.streamArgs()...)
	expectFailure(t, out, code, "binary logging", "--log-bin")
}

// TestSecondArchiverRefused runs two archivers at one cluster: the second
// must refuse with a message naming the first, and the first must go on.
func TestSecondArchiverRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testenv.MariaDBOptions{})
	first := e.start(e.streamArgs()...)
	e.primary.Exec(t, "CREATE DATABASE one")
	e.waitArchived(time.Minute)
	out, code := e.run(e.streamArgs()...)
	expectFailure(t, out, code, "another binarc stream is already running", "pid")
	select {
	case <-first.done:
		t.Fatalf("the first archiver stopped:\n%s", first.out.String())
	default:
	}
	e.primary.Exec(t, "CREATE DATABASE two", "FLUSH BINARY LOGS", "CREATE DATABASE three")
	e.waitArchived(time.Minute)
	first.stop(t)
	e.compareWithPrimary()
	// Once the first has stopped, its lease is released and a new archiver
	// takes over at once.
	second := e.start(e.streamArgs()...)
	e.primary.Exec(t, "CREATE DATABASE four")
	e.waitArchived(time.Minute)
	second.stop(t)
	e.compareWithPrimary()
}

// TestUnreachablePrimary starts the archiver while the primary is down: it
// is not bad input. The archiver says so once, retries, and archives
// everything once the primary is up.
func TestUnreachablePrimary(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testenv.MariaDBOptions{})
	e.primary.Exec(t, "CREATE DATABASE before_outage")
	e.primary.Stop(t)
	p := e.start(e.streamArgs()...)
	time.Sleep(3 * time.Second)
	p.running(t, "the archiver gave up on an unreachable primary")
	e.primary.Start(t)
	e.primary.Exec(t, "CREATE DATABASE after_outage")
	e.waitArchived(time.Minute)
	p.stop(t)
	e.compareWithPrimary()
	if n := len(logLines(p.out.String(), "primary unavailable")); n != 1 {
		t.Errorf("'primary unavailable' logged %d times; want once", n)
	}
	if n := len(logLines(p.out.String(), "primary is back")); n != 1 {
		t.Errorf("'primary is back' logged %d times; want once", n)
	}
}
