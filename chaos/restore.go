package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/binarc/binarc/internal/testenv"
)

// RestoreResult is one restore point and its verdict.
type RestoreResult struct {
	Checkpoint Checkpoint `json:"checkpoint"`
	By         string     `json:"by"` // time, gtid, position
	To         string     `json:"to"`
	Want       string     `json:"want,omitempty"`
	Got        string     `json:"got,omitempty"`
	Verdict    string     `json:"verdict"` // ok, MISMATCH, FAILED, skipped: why
	// Snapshot is the snapshot binarc restore started from (its log).
	Snapshot string `json:"snapshot,omitempty"`
}

// Model is the state the writers' records say a restore point must have:
// the rows acknowledged before it on the winning history, and each hot
// row's last value. Rows of uncertain transactions are left out of the
// comparison, and so are the hot rows they touched.
type Model struct {
	Count    int
	Sum      uint64
	Hot      map[int]int64
	Excluded []int64 // uncertain row ids, left out on both sides
}

// pad is the filler a writer puts in row id.
func pad(id int64) string { return strings.Repeat("x", 40+int(id%100)) }

// rowCRC is CRC32(CONCAT(id, ':', writer, ':', pad)), as the restored
// server computes it.
func rowCRC(t Tx) uint64 {
	return uint64(crc32.ChecksumIEEE([]byte(fmt.Sprintf("%d:%d:%s", t.ID, t.Writer, pad(t.ID)))))
}

// ModelAt computes the model at checkpoint k from the records: the
// acknowledged rows committed before it that the server had then (the
// final master's, when the checkpoint did not read them).
func ModelAt(recs []Tx, final map[int64]bool, k Checkpoint) Model {
	had := func(id int64) bool { return final[id] }
	if k.Rows != nil {
		had = k.Rows.Has
	}
	m := Model{Hot: map[int]int64{}}
	for key := 1; key <= hotRows; key++ {
		m.Hot[key] = 0
	}
	dirty := map[int]bool{}
	hotSeq := map[int]uint64{}
	for _, t := range recs {
		switch {
		case t.Status == Uncertain:
			m.Excluded = append(m.Excluded, t.ID)
			if t.HotKey != 0 && t.At.Before(k.Time) {
				dirty[t.HotKey] = true
			}
		case t.At.Before(k.Time) && had(t.ID):
			m.Count++
			m.Sum += rowCRC(t)
			// The last update by GTID order (the history's order on one
			// domain), not by record order: two writers' records of one
			// hot row may be appended the other way round.
			if seq := gtidSeq(t.GTID); t.HotKey != 0 && seq >= hotSeq[t.HotKey] {
				m.Hot[t.HotKey], hotSeq[t.HotKey] = t.ID, seq
			}
		}
	}
	for key := range dirty {
		delete(m.Hot, key)
	}
	return m
}

func (m Model) String() string {
	keys := make([]int, 0, len(m.Hot))
	for k := range m.Hot {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	var hot []string
	for _, k := range keys {
		hot = append(hot, fmt.Sprintf("%d=%d", k, m.Hot[k]))
	}
	return fmt.Sprintf("rows=%d sum=%d hot[%s]", m.Count, m.Sum, strings.Join(hot, " "))
}

// measure reads the same figures from a restored server.
func measure(ctx context.Context, db *testenv.MariaDB, want Model) (Model, error) {
	where := ""
	if len(want.Excluded) > 0 {
		ids := make([]string, len(want.Excluded))
		for i, id := range want.Excluded {
			ids[i] = strconv.FormatInt(id, 10)
		}
		where = " WHERE id NOT IN (" + strings.Join(ids, ",") + ")"
	}
	rows, err := db.Query(ctx, "SELECT COUNT(*), COALESCE(SUM(CRC32(CONCAT(id, ':', writer, ':', pad))), 0) FROM app.rows"+where)
	if err != nil {
		return Model{}, err
	}
	got := Model{Hot: map[int]int64{}}
	got.Count, _ = strconv.Atoi(rows[0][0])
	got.Sum, _ = strconv.ParseUint(rows[0][1], 10, 64)
	hot, err := db.Query(ctx, "SELECT k, v FROM app.hot")
	if err != nil {
		return Model{}, err
	}
	for _, r := range hot {
		k, _ := strconv.Atoi(r[0])
		if _, ok := want.Hot[k]; ok {
			got.Hot[k], _ = strconv.ParseInt(r[1], 10, 64)
		}
	}
	return got, nil
}

// checkRestores restores K random checkpoints, each by a random kind, into
// fresh servers and compares them with the model (check 3).
func (cp *campaign) checkRestores(ctx context.Context, rep *Report, recs []Tx, final map[int64]bool, losses []Loss) {
	rng := rand.New(rand.NewPCG(cp.cfg.Seed, 0x726573746f7265)) // "restore"
	firstSnap := cp.firstSnapshot()
	var eligible []Checkpoint
	for _, k := range cp.checkpoints {
		if firstSnap.IsZero() || !k.Time.After(firstSnap) {
			continue
		}
		if lostBefore(losses, k) {
			rep.Restores = append(rep.Restores, RestoreResult{Checkpoint: k, Verdict: "skipped: transactions acknowledged before it were lost at the hard flip"})
			continue
		}
		eligible = append(eligible, k)
	}
	if len(eligible) == 0 {
		rep.fail("check 3: no checkpoint after a snapshot to restore")
		return
	}
	kinds := []string{"time", "gtid", "position"}
	// The newest checkpoint first (across every join), then the first
	// checkpoint after each snapshot (so each snapshot taken during the
	// campaign is a restore's base while K allows), then the others at
	// random, each once while there are enough.
	rest := append([]Checkpoint(nil), eligible[:len(eligible)-1]...)
	rng.Shuffle(len(rest), func(i, j int) { rest[i], rest[j] = rest[j], rest[i] })
	order := append([]Checkpoint{eligible[len(eligible)-1]}, afterEachSnapshot(eligible[:len(eligible)-1], cp.snapshotTimes())...)
	for _, k := range rest {
		if !containsCheckpoint(order, k) {
			order = append(order, k)
		}
	}
	for i := 0; i < cp.cfg.Restores; i++ {
		k := order[i%len(order)]
		kind := kinds[rng.IntN(len(kinds))]
		if kind == "time" && switchUnseen(recs, cp.hardFlips, k) {
			// binarc places a switch at the new primary's first commit
			// (or its new timeline's creation): a checkpoint after a hard
			// failover but before either is, by time, still the old
			// primary's history, lost transactions included (README).
			// The point is checked by GTID instead.
			kind = "gtid"
		}
		res := cp.restoreOne(ctx, i, k, kind, ModelAt(recs, final, k))
		if res.Verdict != "ok" && !strings.HasPrefix(res.Verdict, "skipped") {
			rep.fail("check 3: restore --to %s (checkpoint on %s at %s): %s; want %s, got %s",
				res.To, k.Server, k.Time.UTC().Format(time.RFC3339), res.Verdict, res.Want, res.Got)
		}
		rep.Restores = append(rep.Restores, res)
	}
}

// snapshotTimes are the ends of the snapshots the campaign took.
func (cp *campaign) snapshotTimes() []time.Time {
	var out []time.Time
	for _, f := range cp.faults {
		if (f.Kind == Snapshot || f.Kind == SnapshotFault) && f.Error == "" {
			out = append(out, f.End)
		}
	}
	return out
}

// afterEachSnapshot picks, for each snapshot, the first of ks (in time
// order) after it and before the next snapshot: a restore to it starts
// from that snapshot.
func afterEachSnapshot(ks []Checkpoint, snaps []time.Time) []Checkpoint {
	var out []Checkpoint
	for i, at := range snaps {
		for _, k := range ks {
			if k.Time.After(at) && (i+1 == len(snaps) || k.Time.Before(snaps[i+1])) {
				out = append(out, k)
				break
			}
		}
	}
	return out
}

func containsCheckpoint(ks []Checkpoint, k Checkpoint) bool {
	for _, x := range ks {
		if x.Time.Equal(k.Time) && x.GTID == k.GTID {
			return true
		}
	}
	return false
}

// lostBefore reports whether k lies between a lost transaction's commit
// and the hard flip that lost it: k then describes a history that lost.
// (After the flip the winning history holds without it, and the model
// leaves it out.)
func lostBefore(losses []Loss, k Checkpoint) bool {
	for _, l := range losses {
		if k.Rows != nil {
			// Known exactly: the server had it then, and the archive
			// never got it (one a join declares lost is restorable on
			// the timeline it was archived on).
			if l.At.Before(k.Time) && k.Rows.Has(l.ID) && strings.HasPrefix(l.Archived, neverArchived) {
				return true
			}
			continue
		}
		if l.At.Before(k.Time) && (l.FaultAt.IsZero() || l.FaultAt.After(k.Time)) {
			return true
		}
	}
	return false
}

func (cp *campaign) firstSnapshot() time.Time {
	if t := cp.snapshotTimes(); len(t) > 0 {
		return t[0]
	}
	return time.Time{}
}

// restoreOne runs binarc restore --datadir to k, starts a server on the
// result and compares it with want.
func (cp *campaign) restoreOne(ctx context.Context, i int, k Checkpoint, by string, want Model) RestoreResult {
	res := RestoreResult{Checkpoint: k, By: by, Want: want.String()}
	switch by {
	case "time":
		res.To = k.Time.UTC().Format(time.RFC3339)
	case "gtid":
		res.To = k.GTID
	case "position":
		tl, err := cp.timelineOf(k)
		if err != nil {
			res.Verdict = "skipped: " + err.Error()
			return res
		}
		res.To = tl + "/" + k.File + ":" + k.Pos
	}
	parent := filepath.Join(cp.cfg.Dir, "restores")
	dir := filepath.Join(parent, fmt.Sprintf("r%d", i))
	if err := mkdirs(parent); err != nil || testenv.OpenToOthers(parent) != nil {
		res.Verdict = fmt.Sprintf("FAILED: restore directory: %v", err)
		return res
	}
	out, err := cp.r.run(ctx, 10*time.Minute, false, "restore", "--store", cp.r.store, "--cluster", clusterName, "--to", res.To, "--datadir", dir)
	if err != nil {
		// The whole output stays beside the restores for the next finding;
		// the verdict names binarc's error line, which a restore logs before
		// its last lines (seed 44's lost its cause to lastLines alone).
		logf := dir + ".log"
		if werr := os.WriteFile(logf, []byte(out), 0o644); werr != nil {
			logf = werr.Error()
		}
		res.Verdict = fmt.Sprintf("FAILED: %v: %s (whole output: %s)", err, errorLines(out, 6), logf)
		return res
	}
	if m := snapshotLine.FindStringSubmatch(out); m != nil {
		res.Snapshot = m[1]
	}
	db, err := testenv.LaunchMariaDBOn(ctx, dir, testenv.MariaDBOptions{ServerID: 77, NoLogBin: true, ExtraArgs: []string{"--skip-slave-start"}})
	if err != nil {
		res.Verdict = fmt.Sprintf("FAILED: start a server on the restored datadir: %v", err)
		return res
	}
	defer func() { db.Close(); os.RemoveAll(dir) }()
	got, err := measure(ctx, db, want)
	if err != nil {
		res.Verdict = fmt.Sprintf("FAILED: %v", err)
		return res
	}
	res.Got = got.String()
	res.Verdict = "ok"
	if res.Got != res.Want {
		res.Verdict = "MISMATCH"
	}
	return res
}

// snapshotLine finds the snapshot in binarc restore's log.
var snapshotLine = regexp.MustCompile(`"snapshot":"([^"]+)"`)

// timelineOf names the timeline that holds k's file of k's server.
func (cp *campaign) timelineOf(k Checkpoint) (string, error) {
	names, err := cp.timelineDirs()
	if err != nil {
		return "", err
	}
	var metas []timelineMeta
	for _, name := range names {
		if m, err := cp.readTimelineMeta(name); err == nil {
			metas = append(metas, m)
		}
	}
	tl, err := chooseTimeline(metas, k)
	if err != nil {
		return "", err
	}
	pos, _ := strconv.ParseUint(k.Pos, 10, 64)
	if end := archivedEnd(filepath.Join(cp.archiveDir(), tl), k.File); end < pos {
		// The server was writable too briefly for binarc to archive it
		// there (its transactions are on the next timeline, under the
		// next server's coordinates): the point has no position here.
		return "", fmt.Errorf("%s holds %s:%s only up to %d: binarc did not archive %s at that position (GTID and time restores reach the state)", tl, k.File, k.Pos, end, k.Server)
	}
	return tl, nil
}

// archivedEnd is how far timeline directory dir holds binlog file: its
// index's size, or the end of its last segment (versitygw's posix backend
// keeps each object as a file); 0 when it has none of it.
func archivedEnd(dir, file string) uint64 {
	if b, err := os.ReadFile(filepath.Join(dir, file+".index.json")); err == nil {
		var ix struct {
			Size uint64 `json:"size"`
		}
		if json.Unmarshal(b, &ix) == nil {
			return ix.Size
		}
	}
	entries, _ := os.ReadDir(filepath.Join(dir, file))
	var end uint64
	for _, e := range entries {
		var start, stop uint64
		if _, err := fmt.Sscanf(e.Name(), "%d-%d.zst", &start, &stop); err == nil && stop > end {
			end = stop
		}
	}
	return end
}

// timelineMeta is what the campaign reads of a timeline: its
// timeline.json and its join.
type timelineMeta struct {
	Name      string
	ServerID  uint32 `json:"source_server_id"`
	StartFile string `json:"start_file"`
	Join      *JoinPoint
}

// readTimelineMeta reads timeline name's timeline.json and, when it has
// one, its join.json, from the bucket's directory.
func (cp *campaign) readTimelineMeta(name string) (timelineMeta, error) {
	m := timelineMeta{Name: name}
	info, err := os.ReadFile(filepath.Join(cp.archiveDir(), name, "timeline.json"))
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(info, &m); err != nil {
		return m, fmt.Errorf("timeline.json of %s: %w", name, err)
	}
	if b, err := os.ReadFile(filepath.Join(cp.archiveDir(), name, "join.json")); err == nil {
		var j JoinPoint
		if json.Unmarshal(b, &j) == nil {
			m.Join = &j
		}
	}
	return m, nil
}

// chooseTimeline picks, among metas in archive order, the newest timeline
// of k's server whose first file is not after k's file. It goes by files,
// not by clocks: a checkpoint read from a server a moment before the
// archiver noticed the server became writable is on the timeline that
// starts then, though the timeline's name carries a later second (seed 11
// in CI named the previous timeline of that server, which ends files
// earlier, and the restore failed).
func chooseTimeline(metas []timelineMeta, k Checkpoint) (string, error) {
	var best *timelineMeta
	for i := range metas {
		m := &metas[i]
		if m.ServerID == k.ID && binlogFileLE(m.StartFile, k.File) {
			best = m
		}
	}
	if best == nil {
		return "", fmt.Errorf("no timeline of server %s starts at or before %s", k.Server, k.File)
	}
	// A timeline's history starts at its join: a position of its server
	// before that is on the previous timeline (by another name).
	if j := best.Join; j != nil {
		pos, _ := strconv.ParseUint(k.Pos, 10, 64)
		if j.At.after(k.File, pos) {
			return "", fmt.Errorf("%s:%s is before %s's join at %s:%d: the previous timeline holds that state", k.File, k.Pos, best.Name, j.At.File, j.At.Offset)
		}
	}
	return best.Name, nil
}

// binlogFileLE reports whether binlog file a comes no later than b: by
// their numeric extensions, which may differ in width past 999999.
func binlogFileLE(a, b string) bool {
	na, _ := strconv.ParseUint(a[strings.LastIndexByte(a, '.')+1:], 10, 64)
	nb, _ := strconv.ParseUint(b[strings.LastIndexByte(b, '.')+1:], 10, 64)
	return na <= nb
}

// gtidSeq is the sequence number of a MariaDB GTID (domain-server-seq).
func gtidSeq(gtid string) uint64 {
	var d, srv, seq uint64
	fmt.Sscanf(gtid, "%d-%d-%d", &d, &srv, &seq)
	return seq
}

// switchUnseen tells whether checkpoint k comes after a hard failover
// whose new primary (k's server) had committed nothing of its own before
// k's second: by time, binarc cannot tell that point from the old
// primary's history.
func switchUnseen(recs []Tx, hardFlips []time.Time, k Checkpoint) bool {
	for _, h := range hardFlips {
		if h.IsZero() || !h.Before(k.Time) {
			continue
		}
		seen := false
		for _, t := range recs {
			if t.Server == k.Server && !t.At.Before(h) && t.At.Before(k.Time.Add(-time.Second)) {
				seen = true
				break
			}
		}
		if !seen {
			return true
		}
	}
	return false
}
