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
