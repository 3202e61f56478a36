package stream

import (
	"context"
	"fmt"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/replication"
)

// endState reads the GTID state at the durable end of timeline tl: the
// state at the start of its last file (its Gtid_list or Previous_gtids
// event) and every transaction archived whole after it, as the archive's
// transaction scan ends groups (an XID, a DDL's one statement, a COMMIT
// query, an XA PREPARE). ok is false when the file records no state, or
// an empty one and no transaction with a GTID after it: GTIDs off (MySQL
// with gtid_mode OFF writes an empty Previous_gtids), where every state
// would hold the empty one and the new timeline would start at the
// server's newest binlog instead of its oldest.
func endState(ctx context.Context, c archive.Catalog, tl string) (*replication.GTIDState, bool, error) {
	files, err := c.Files(ctx, tl)
	if err != nil || len(files) == 0 {
		return nil, false, err
	}
	fs, err := c.FileState(ctx, tl, files[len(files)-1])
	if err != nil {
		return nil, false, err
	}
	st, found := c.FileStartState(ctx, fs)
	if !found {
		st = &replication.GTIDState{}
	}
	err = archive.Transactions(ctx, c, fs, func(t *archive.Transaction) bool {
		st.Add(t.GTID)
		return true
	})
	if err != nil {
		return nil, false, fmt.Errorf("timeline %s, %s: %w", tl, fs.File, err)
	}
	return st, found && !st.Empty(), nil
}
