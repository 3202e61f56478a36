package integration

import (
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
