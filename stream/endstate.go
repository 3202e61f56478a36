package stream

import (
	"context"
	"fmt"

	gomysql "github.com/go-mysql-org/go-mysql/replication"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/replication"
)

// endState reads the GTID state at the durable end of timeline tl: the
// state at the start of its last file (its Gtid_list or Previous_gtids
// event) and every transaction archived whole after it. ok is false when
// the file records no state (GTIDs off).
func endState(ctx context.Context, c archive.Catalog, tl string) (*replication.GTIDState, bool, error) {
	files, err := c.Files(ctx, tl)
	if err != nil || len(files) == 0 {
		return nil, false, err
	}
	fs, err := c.FileState(ctx, tl, files[len(files)-1])
	if err != nil {
		return nil, false, err
	}
	pr := c.Stream(ctx, fs)
	defer pr.Close()
	st := &replication.GTIDState{}
	found := false
	pending := "" // a transaction's GTID, added once the next one begins or the file is complete
	err = replication.ReadEvents(pr, 0, func(_ uint64, h replication.Header, raw []byte) error {
		switch h.Type {
		case gomysql.MARIADB_GTID_LIST_EVENT, gomysql.PREVIOUS_GTIDS_EVENT:
			s, err := replication.EventStartState(raw)
			if err != nil {
				return err
			}
			st.AddState(s)
			found = true
		case gomysql.MARIADB_GTID_EVENT, gomysql.GTID_EVENT:
			st.Add(pending)
			pending = replication.ParseGTID(raw)
		case gomysql.XID_EVENT:
			st.Add(pending)
			pending = ""
		}
		return nil
	})
	if err != nil {
		return nil, false, fmt.Errorf("timeline %s, %s: %w", tl, fs.File, err)
	}
	if fs.Complete {
		st.Add(pending)
	}
	return st, found, nil
}

// maxHeldJoins bounds how many recorded joins heldState reads back along
// a timeline's history: each is one small GET.
const maxHeldJoins = 32

// heldState is what the archive's history holds at the end of timeline
// tl: its end state, with the states its recorded joins met, back along
// its history. A server restored from the archive lists in its binlog
// only the servers it has binlogged since, so a timeline archived from
// it ends with a state that leaves out older servers the history has;
// another server, which kept them, names binlog files whose start states
// list them. Compared with the end state alone, those files looked as if
// they held what the archive never got, and binarc started the new
// timeline at the server's first binlog: the 60-minute run of 2026-12-07
// archived a rebuilt server's whole copied history again, was cut off
// two seconds in by a hard flip, and the next switch then found no
// history shared with that timeline (a broken join).
func heldState(ctx context.Context, c archive.Catalog, tl string, end *replication.GTIDState) *replication.GTIDState {
	held := end.Clone()
	for i := 0; i < maxHeldJoins && tl != ""; i++ {
		j, err := archive.ReadJoin(ctx, c, tl)
		if err != nil || j == nil || j.Broken != "" {
			break
		}
		meet, err := replication.ParseGTIDState(j.Meet)
		if err != nil {
			break
		}
		held.AddState(meet)
		tl = j.From()
	}
	return held
}
