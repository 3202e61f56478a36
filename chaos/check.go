package chaos

import (
	"context"
	"fmt"
	"strconv"
	"time"
)

// Loss is an acknowledged transaction the winning history does not have.
type Loss struct {
	Tx
	Cause       string    `json:"cause"`
	BeforeFault string    `json:"commit_before_fault"` // time from its commit to the fault
	FaultAt     time.Time `json:"fault_at"`
	// Archived says where the archive has it: in a lost range a join
	// declares, or nowhere (binarc never received it).
	Archived string `json:"archived"`
}

// check runs the checker's checks and adds their results to rep.
func (cp *campaign) check(ctx context.Context, rep *Report) {
	recs := cp.w.records()
	final, err := cp.finalRows(ctx)
	if err != nil {
		rep.fail("read the final writable master's rows: %v", err)
		return
	}
	for _, t := range recs {
		if t.Status == Acked {
			rep.Acked++
		} else {
			rep.Uncertain++
		}
	}
	tls, err := cp.readTimelines(ctx, "fetched")
	if err != nil {
		rep.fail("read the archive with binarc binlog fetch and mariadb-binlog: %v", err)
		return
	}
	cp.tls = tls
	hist, problems := History(tls)
	for _, p := range problems {
		rep.fail("check 2: %s", p)
	}
	rep.HistoryTransactions = len(hist)
	for _, d := range Duplicates(hist) {
		rep.fail("check 2: %s", d)
	}
	for _, m := range Missing(recs, final, hist) {
		rep.fail("check 1: %s", m)
	}
	rep.Losses = Losses(recs, final, cp.hardFlips)
	DeclareLosses(rep.Losses, tls)
	for i, l := range rep.Losses {
		if l.BeforeFault == "" {
			rep.fail("check 1: acknowledged transaction %s (row %d on %s) is not on the final master, and no hard failover (a hard flip, or R promoted) came after it", l.GTID, l.ID, l.Server)
		}
		if cp.cfg.SemiSync && l.Archived == neverArchived {
			if f, ok := inFallback(rep.SemiSyncFallbacks, l.Tx); ok {
				rep.Losses[i].Archived += "; acknowledged during the semi-sync fallback " + f.String()
				continue
			}
			rep.fail("check 1 (--semi-sync: no acknowledged transaction lost): %s (row %d on %s, committed %s before %s) was acknowledged to its writer with semi-sync on but never reached the archive",
				l.GTID, l.ID, l.Server, l.BeforeFault, l.Cause)
		}
	}
	if out, err := cp.r.run(ctx, 5*time.Minute, false, "verify", "--store", cp.r.store, "--cluster", clusterName); err != nil {
		rep.fail("check 4 (binarc verify): %v\n%s", err, lastLines(out, 10))
	}
	cp.checkRestores(ctx, rep, recs, final, rep.Losses)
}

// finalRows is the set of row ids the final writable master holds: the
// history that won.
func (cp *campaign) finalRows(ctx context.Context) (map[int64]bool, error) {
	rows, err := cp.c.Writable().db.Query(ctx, "SELECT id FROM app.rows")
	if err != nil {
		return nil, err
	}
	ids := make(map[int64]bool, len(rows))
	for _, r := range rows {
		id, _ := strconv.ParseInt(r[0], 10, 64)
		ids[id] = true
	}
	return ids, nil
}

// Missing lists the acknowledged transactions on the winning history (their
// rows are on the final master) that the archive's history lacks (check 1).
func Missing(recs []Tx, final map[int64]bool, hist []Event) []string {
	have := make(map[string]bool, len(hist))
	for _, e := range hist {
		have[e.GTID] = true
	}
	var out []string
	for _, t := range recs {
		if t.Status == Acked && final[t.ID] && !have[t.GTID] {
			out = append(out, fmt.Sprintf("acknowledged transaction %s (row %d, writer %d, on %s at %s) is not in the archive's history",
				t.GTID, t.ID, t.Writer, t.Server, t.At.UTC().Format(time.RFC3339Nano)))
		}
	}
	return out
}

// Losses lists the acknowledged transactions the final master does not
// have, each with the first hard flip after its commit (the fault that lost
// it) and the time from its commit to that flip.
func Losses(recs []Tx, final map[int64]bool, hardFlips []time.Time) []Loss {
	var out []Loss
	for _, t := range recs {
		if t.Status != Acked || final[t.ID] {
			continue
		}
		l := Loss{Tx: t, Cause: "no hard failover after its commit"}
		for i, at := range hardFlips {
			if at.After(t.At) {
				l.Cause = fmt.Sprintf("hard failover %d at %s", i+1, at.UTC().Format(time.RFC3339Nano))
				l.BeforeFault, l.FaultAt = at.Sub(t.At).Round(time.Millisecond).String(), at
				break
			}
		}
		out = append(out, l)
	}
	return out
}

// inFallback finds the semi-sync fallback, if any, during which t's
// server acknowledged it (with two sampling periods of slack).
func inFallback(fs []Fallback, t Tx) (Fallback, bool) {
	for _, f := range fs {
		if f.covers(t.Server, t.At, 200*time.Millisecond) {
			return f, true
		}
	}
	return Fallback{}, false
}

// neverArchived is a loss's Archived when no join declares it.
const neverArchived = "never reached binarc"

// DeclareLosses says for each loss whether a join declares it lost (binarc
// had archived it on the losing timeline) or the archive never had it.
func DeclareLosses(losses []Loss, tls []Timeline) {
	for i := range losses {
		losses[i].Archived = neverArchived
		for _, tl := range tls {
			if tl.Join != nil && inRanges(losses[i].GTID, tl.Join.Lost) {
				losses[i].Archived = "declared lost by the join of " + tl.Name
			}
		}
	}
}

// inRanges reports whether gtid (domain-server-seq) is in one of the
// ranges "domain-server-first..last" (or a single GTID).
func inRanges(gtid string, ranges []string) bool {
	var d, s, n uint64
	if _, err := fmt.Sscanf(gtid, "%d-%d-%d", &d, &s, &n); err != nil {
		return false
	}
	for _, r := range ranges {
		var rd, rs, first, last uint64
		if c, _ := fmt.Sscanf(r, "%d-%d-%d..%d", &rd, &rs, &first, &last); c == 3 {
			last = first
		} else if c != 4 {
			continue
		}
		if rd == d && rs == s && first <= n && n <= last {
			return true
		}
	}
	return false
}
