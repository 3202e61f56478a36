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
	held := heldJudge(ctx, a.cat, prev.Timeline, end)
	if name, st := newestHeld(names, states, held); name != "" {
		a.log.Info().Str("start_file", name).Str("file_gtid_state", st.String()).Str("archived_gtid_state", es).
			Msg("the new timeline starts at the newest binlog whose starting GTID state the archive holds")
		return name
	}
	return oldest
}

// newestHeld is the newest of the binlog files names (oldest first) whose
// starting GTID state the history holds, and that state; "" when none
// does.
func newestHeld(names []string, states map[string]*replication.GTIDState, holds func(*replication.GTIDState) bool) (string, *replication.GTIDState) {
	for i := len(names) - 1; i >= 0; i-- {
		if st, ok := states[names[i]]; ok && holds(st) {
			return names[i], st
		}
	}
	return "", nil
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

// startByDump finds where a timeline after prev starts on a MariaDB
// primary without listing its binlogs: a dump from the archived GTID
// state names the file that holds what follows it, and that file's
// starting state (replication.Config.GTIDStartFile). A semi-sync primary
// holds SHOW BINARY LOGS behind the commits waiting for binarc's
// acknowledgement, which binarc can give only once it streams: with the
// list, the first commits on a new primary waited out its semi-sync
// timeout. When the server refuses the archived end state (a hard
// failover: it lacks transactions the archive has), the states at the
// start of the previous timeline's last files are tried, newest first:
// the new primary replicated those, so it names a file whose start the
// archive holds, as startByGTID would choose from the list. ok is false
// when every try is refused; the caller then lists the binlogs.
func (a *Archiver) startByDump(ctx context.Context, prev *archive.TimelineEnd) (start string, state *string, ok bool) {
	end, known, err := endState(ctx, a.cat, prev.Timeline)
	if err != nil || !known {
		return "", nil, false
	}
	es := end.String()
	// The earlier states are read from the archive only when the end
	// state does not do (a clean flip needs none of them, and a
	// semi-sync primary's commits wait meanwhile).
	holds := heldJudge(ctx, a.cat, prev.Timeline, end)
	tries := []*replication.GTIDState{end}
	for i := 0; i < len(tries); i++ {
		from := tries[i]
		file, st, err := a.src.GTIDStartFile(ctx, from)
		if err != nil || st == nil || !holds(st) {
			a.log.Info().Err(err).Str("dump_gtid_state", from.String()).Str("archived_gtid_state", es).
				Msg("the new primary does not continue this archived GTID state by a dump (a hard failover lost transactions, or its binlog starts after them)")
			if i == 0 {
				tries = dumpStarts(ctx, a.cat, prev.Timeline, end, holds) // end first, as tried
			}
			continue
		}
		fs := st.String()
		prev.GTIDState = &es
		msg := "the new timeline starts at the binlog the primary streams the archived GTID state from"
		if i > 0 {
			msg = "the new timeline starts at the binlog the primary streams an earlier archived GTID state from (it lacks the archive's last transactions: a hard failover)"
		}
		a.log.Info().Str("start_file", file).Str("file_gtid_state", fs).Str("archived_gtid_state", es).Str("dump_gtid_state", from.String()).Msg(msg)
		return file, &fs, true
	}
	a.log.Info().Str("archived_gtid_state", es).Msg("no archived GTID state found on the new primary by a dump: listing its binlogs instead")
	return "", nil, false
}

// maxDumpStarts bounds the earlier file-start states startByDump tries
// after the end state: each is one refused connection.
const maxDumpStarts = 3

// dumpStarts is the states startByDump asks the new primary for: the
// archived end state, then the GTID states at the start of timeline tl's
// last maxDumpStarts files that the history holds, newest first, each
// once.
func dumpStarts(ctx context.Context, c archive.Catalog, tl string, end *replication.GTIDState, holds func(*replication.GTIDState) bool) []*replication.GTIDState {
	out := []*replication.GTIDState{end}
	seen := map[string]bool{end.String(): true}
	files, err := c.Files(ctx, tl)
	if err != nil {
		return out
	}
	for i := len(files) - 1; i >= 0 && i >= len(files)-maxDumpStarts; i-- {
		st, ok := c.StartState(ctx, tl, files[i])
		if ok && !seen[st.String()] && holds(st) {
			seen[st.String()] = true
			out = append(out, st)
		}
	}
	return out
}

// heldJudge tells whether the archive's history at the end of timeline tl
// holds a GTID state: end holds it, or the history's held state
// (archive.Catalog.HeldState), which includes end and is read from the
// recorded joins only the first time end does not do (a clean flip reads
// none of them, and a semi-sync primary's commits wait meanwhile).
func heldJudge(ctx context.Context, c archive.Catalog, tl string, end *replication.GTIDState) func(*replication.GTIDState) bool {
	var held *replication.GTIDState
	return func(st *replication.GTIDState) bool {
		if end.Contains(st) {
			return true
		}
		if held == nil {
			held = c.HeldState(ctx, tl, end)
		}
		return held.Contains(st)
	}
}
