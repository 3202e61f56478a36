package integration

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/binarc/binarc/integration/testenv"
)

// TestSeveralSourcesWrongPassword: binarc stream with two real MariaDB
// sources and a wrong password exits non-zero by itself, naming the server
// that refused it and the fix, as it does with one source; it used to
// take the refusals for "not writable" and wait forever.
func TestSeveralSourcesWrongPassword(t *testing.T) {
	e := newEnv(t, testenv.MariaDBOptions{ServerID: 1})
	b := testenv.StartMariaDB(t, testenv.MariaDBOptions{ServerID: 2})
	b.CreateReplicationUser(t, replUser, replPass)
	p := e.startEnv([]string{"BINARC_SOURCE_PASSWORD=wrong-Pa55"},
		append([]string{"stream", "--source", multiSource(e.primary, b)}, e.streamArgs()[3:]...)...)
	select {
	case <-p.done:
	case <-time.After(2 * time.Minute): // a guard: it must exit by itself
		t.Fatalf("binarc stream still runs with a wrong password for both sources:\n%s", tail(p.out.String(), 4000))
	}
	expectFailure(t, p.out.String(), p.cmd.ProcessState.ExitCode(), "access denied", "BINARC_SOURCE_PASSWORD", e.primary.Addr())
	if lines := logLines(p.out.String(), "no source is writable"); len(lines) > 0 {
		t.Errorf("binarc waited for a writable source: %v", lines)
	}
}

// TestSeveralSourcesOneRefuses: one host of --source refuses binarc's
// login (a freshly provisioned server without binarc's user, as in the
// fault campaign's 60-minute run) while another is the writable primary:
// binarc archives the primary and says, as an error, which host refuses.
// It used to exit at start, every start, leaving the primary unarchived.
func TestSeveralSourcesOneRefuses(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testenv.MariaDBOptions{ServerID: 1})
	fresh := testenv.StartMariaDB(t, testenv.MariaDBOptions{ServerID: 2, ExtraArgs: []string{"--read-only=ON"}})
	p := e.start(append([]string{"stream", "--source", multiSource(fresh, e.primary)}, e.streamArgs()[3:]...)...)
	e.primary.Exec(t, "CREATE DATABASE one_refuses", "CREATE TABLE one_refuses.t (id INT PRIMARY KEY)", "INSERT INTO one_refuses.t VALUES (1)")
	e.waitArchived(time.Minute)
	p.stop(t)
	if lines := logLines(p.out.String(), "a source refuses binarc"); len(lines) == 0 || lines[0]["level"] != "error" || !strings.Contains(fmt.Sprint(lines[0]["error"]), fresh.Addr()) {
		t.Errorf("binarc did not name the refusing source %s as an error:\n%s", fresh.Addr(), tail(p.out.String(), 3000))
	}
}

// TestSeveralSourcesOneRefusesDuringAFailover: the primary gone, one
// source a fresh server without binarc's user (a rebuild in progress) and
// another answering read-only (about to be promoted): a failover is under
// way, so binarc waits for a writable source instead of exiting on the
// refusal (the campaign's seed 22 met it), and archives the promoted one.
// With the others down, a refusal still fails at once
// (stream.TestSeveralSourcesWrongPassword).
func TestSeveralSourcesOneRefusesDuringAFailover(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testenv.MariaDBOptions{ServerID: 1})
	e.primary.Exec(t, "SET GLOBAL read_only = ON")
	fresh := testenv.StartMariaDB(t, testenv.MariaDBOptions{ServerID: 2, ExtraArgs: []string{"--read-only=ON"}})
	p := e.start(append([]string{"stream", "--source", multiSource(fresh, e.primary)}, e.streamArgs()[3:]...)...)
	p.waitLog(t, "no source is writable", time.Minute)
	time.Sleep(3 * time.Second) // several rounds of the wait
	p.running(t, "binarc exited while a source answered read-only")
	e.primary.Exec(t, "SET GLOBAL read_only = OFF", "CREATE DATABASE promoted", "CREATE TABLE promoted.t (id INT PRIMARY KEY)", "INSERT INTO promoted.t VALUES (1)")
	e.waitArchived(time.Minute)
	p.stop(t)
}
