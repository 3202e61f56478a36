package stream

import (
	"context"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/replication"
)

// startByGTID chooses where a timeline that follows prev starts on the
// new server: the newest of its binlog files whose starting GTID state the
// archive already holds, so that nothing the new server has is left out
// and what the archive has is not fetched again. Without GTID states it is
// the oldest file.
// It records the previous timeline's end state in prev.
func (a *Archiver) startByGTID(ctx context.Context, prev *archive.TimelineEnd, logs []replication.BinlogFile) string {
	oldest := logs[0].Name
	end, ok, err := endState(ctx, a.cat, prev.Timeline)
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
