package archive

import (
	"context"
	"fmt"

	"github.com/binarc/binarc/replication"
	gomysql "github.com/go-mysql-org/go-mysql/replication"
)

// EndState reads the GTID state at the durable end of timeline tl: the
// state at the start of its last file (its Gtid_list or Previous_gtids
// event) and every transaction archived whole after it. ok is false when
// the file records no state (GTIDs off).
func (c Catalog) EndState(ctx context.Context, tl string) (*replication.GTIDState, bool, error) {
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

// startByGTID chooses where a timeline that follows prev starts on the
// new server: the newest of its binlog files whose starting GTID state the
// archive already holds, so that nothing the new server has is left out
// and what the archive has is not fetched again. Without GTID states it is
// the oldest file.
// It records the previous timeline's end state in prev.
func (a *Archiver) startByGTID(ctx context.Context, prev *TimelineEnd, logs []replication.BinlogFile) string {
	oldest := logs[0].Name
	end, ok, err := a.cat.EndState(ctx, prev.Timeline)
	if err != nil || !ok {
		a.log.Warn().Err(err).Str("timeline", prev.Timeline).Msg("the archived GTID state is unknown: the new timeline starts at the oldest binlog the server has")
		return oldest
	}
	es := end.String()
	prev.GTIDState = &es
	names := make([]string, len(logs))
	for i, l := range logs {
		names[i] = l.Name
	}
	states, err := a.src.BinlogStartStates(ctx, names)
	if err != nil {
		a.log.Warn().Err(err).Msg("could not read the server's binlog GTID states: the new timeline starts at its oldest binlog")
		return oldest
	}
	for i := len(logs) - 1; i >= 0; i-- {
		if st, ok := states[logs[i].Name]; ok && end.Contains(st) {
			a.log.Info().Str("start_file", logs[i].Name).Str("file_gtid_state", st.String()).Str("archived_gtid_state", es).
				Msg("the new timeline starts at the newest binlog whose starting GTID state the archive holds")
			return logs[i].Name
		}
	}
	return oldest
}

// fileStartState is the GTID state the server lists at the start of one
// of its binlog files, or nil when it lists none or cannot be asked.
func (a *Archiver) fileStartState(ctx context.Context, file string) *string {
	states, err := a.src.BinlogStartStates(ctx, []string{file})
	if err != nil || states[file] == nil {
		return nil
	}
	s := states[file].String()
	return &s
}
