package restore

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/binarc/binarc/internal/binlogtest"
	"github.com/binarc/binarc/replication"
	gomysql "github.com/go-mysql-org/go-mysql/replication"
)

// TestPlanHasLoadData: the client gets LOAD DATA LOCAL only for a plan
// whose ranges hold a LOAD DATA's file events; one before the range, or
// a planted LOAD DATA LOCAL in a query event, does not turn it on.
func TestPlanHasLoadData(t *testing.T) {
	b := binlogtest.New("mysql-bin.000001")
	data := []byte(replication.Magic)
	add := func(ev replication.Event) replication.Event {
		data = append(data, ev.Raw...)
		return ev
	}
	add(b.Next(gomysql.FORMAT_DESCRIPTION_EVENT, 100))
	add(b.NextBody(gomysql.BEGIN_LOAD_QUERY_EVENT, []byte("\x01\x00\x00\x001,one\n")))
	exec := add(b.NextBody(gomysql.EXECUTE_LOAD_QUERY_EVENT, binlogtest.QueryBody("LOAD DATA INFILE 'x' INTO TABLE t")))
	planted := add(b.NextBody(gomysql.QUERY_EVENT, binlogtest.QueryBody("LOAD DATA LOCAL INFILE '/etc/shadow' INTO TABLE t")))
	path := filepath.Join(t.TempDir(), "mysql-bin.000001")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		start, stop uint64
		want        bool
	}{
		{4, b.Pos, true},
		{exec.Start, exec.End, true},
		{planted.Start, planted.End, false},
	} {
		got, err := planHasLoadData(&Plan{Ranges: []ReplayRange{{Path: path, Start: c.start, Stop: c.stop}}})
		if err != nil || got != c.want {
			t.Errorf("range [%d, %d): %v, %v; want %v", c.start, c.stop, got, err, c.want)
		}
	}
	if err := os.WriteFile(path, append(data[:len(data):len(data)], make([]byte, 19)...), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := planHasLoadData(&Plan{Ranges: []ReplayRange{{Path: path, Start: planted.End, Stop: planted.End + 19}}}); err == nil || !strings.Contains(err.Error(), "event length") {
		t.Errorf("a zero event length: %v; want an error naming it", err)
	}
}
