package serve

import (
	"context"
	"encoding/binary"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/binarc/binarc/replication"
	"github.com/go-mysql-org/go-mysql/client"
	"github.com/go-mysql-org/go-mysql/mysql"
	gomysql "github.com/go-mysql-org/go-mysql/replication"
	"github.com/rs/zerolog"
)

// chainSource is two timelines whose files have one name: t1 ends after
// transaction 0-1-1, t2 goes on from there (its first transaction, the
// shared history, is left out by Start).
type chainSource struct {
	dirs  map[string]string
	files []File
}

func (c *chainSource) Files(context.Context) ([]File, error) { return c.files, nil }

func (c *chainSource) Read(ctx context.Context, f File, from uint64, fn func(uint64, replication.Header, []byte) error) error {
	d := &DirSource{Dir: c.dirs[f.Timeline], Names: []string{f.Name}}
	return d.Read(ctx, f, from, fn)
}

// TestDumpAcrossTimelines: a replica by GTID enters the next timeline
// where its history goes on and gets every transaction once; one asking
// for a file name two timelines hold is refused with the way out.
func TestDumpAcrossTimelines(t *testing.T) {
	d1, d2 := t.TempDir(), t.TempDir()
	name, evs := testFile(t, d1)
	testFile(t, d2)
	cut := evs[6].Start // after 0-1-1
	src := &chainSource{dirs: map[string]string{"t1": d1, "t2": d2}, files: []File{
		{Timeline: "t1", Name: name, Size: cut, Complete: true},
		{Timeline: "t2", Name: name, Size: evs[len(evs)-1].End, Complete: true, Start: cut, StartState: "0-1-1"},
	}}
	addr := startServer(t, Config{Source: src, User: "u", Password: "p", ServerID: 9, Log: zerolog.Nop()})

	dump := func(state, file string) (seqs []uint64, refusal string) {
		c, err := client.Connect(addr, "u", "p", "")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		setup := []string{"SET @master_binlog_checksum= @@global.binlog_checksum", "SET @master_heartbeat_period= 100000000", "SET @mariadb_slave_capability=4"}
		if state != "-" {
			setup = append(setup, "SET @slave_connect_state='"+state+"'")
		}
		for _, q := range setup {
			if _, err := c.Execute(q); err != nil {
				t.Fatal(err)
			}
		}
		c.ResetSequence()
		if err := c.WritePacket(append([]byte{0, 0, 0, 0, mysql.COM_BINLOG_DUMP, 4, 0, 0, 0, 0, 0, 2, 0, 0, 0}, file...)); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			pkt, err := c.ReadPacket()
			if err != nil {
				if me, ok := err.(*mysql.MyError); ok {
					return seqs, me.Message
				}
				t.Fatal(err)
			}
			if pkt[0] == mysql.ERR_HEADER {
				return seqs, string(pkt[9:])
			}
			h, _ := replication.ParseHeader(pkt[1:])
			switch h.Type {
			case gomysql.HEARTBEAT_EVENT:
				return seqs, ""
			case gomysql.MARIADB_GTID_EVENT:
				seqs = append(seqs, binary.LittleEndian.Uint64(pkt[1+replication.HeaderLen:]))
			}
		}
		t.Fatal("the stream did not end")
		return nil, ""
	}
	if seqs, refusal := dump("0-1-1", ""); refusal != "" || !slices.Equal(seqs, []uint64{2, 3}) {
		t.Errorf("GTID 0-1-1: transactions %v (%q), want 2 and 3 from the second timeline", seqs, refusal)
	}
	if seqs, refusal := dump("", ""); refusal != "" || !slices.Equal(seqs, []uint64{1, 2, 3}) {
		t.Errorf("from the start: transactions %v (%q), want 1, 2, 3 once each", seqs, refusal)
	}
	if _, refusal := dump("-", name); !strings.Contains(refusal, "2 timelines") || !strings.Contains(refusal, "MASTER_USE_GTID=slave_pos") {
		t.Errorf("a file name on two timelines: %q", refusal)
	}
}
