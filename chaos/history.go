package chaos

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/binarc/binarc/internal/progs"
)

// Event is one transaction as the archive holds it: its GTID and where its
// GTID event starts.
type Event struct {
	Timeline string `json:"timeline"`
	File     string `json:"file"`
	Pos      uint64 `json:"pos"`
	GTID     string `json:"gtid"`
}

func (e Event) String() string {
	return fmt.Sprintf("%s at %s/%s:%d", e.GTID, e.Timeline, e.File, e.Pos)
}

// JoinPoint is what the checker reads of a join.json: where the previous
// timeline's history ends and the new one's begins.
type JoinPoint struct {
	Timeline string `json:"timeline"`
	Previous string `json:"previous"`
	// Parent is the older timeline this one continues, when not Previous.
	Parent      string   `json:"parent"`
	Broken      string   `json:"broken"`
	At          Coord    `json:"at"`
	PreviousEnd Coord    `json:"previous_end"`
	Lost        []string `json:"lost"`
	Errant      []string `json:"errant"`
}

// Coord is a binlog position.
type Coord struct {
	File   string `json:"file"`
	Offset uint64 `json:"offset"`
}

// before reports whether (file, pos) is before c.
func (c Coord) after(file string, pos uint64) bool {
	return file < c.File || (file == c.File && pos < c.Offset)
}

// Timeline is one timeline's transactions, in archive order, and the join
// that starts it (nil for the first).
type Timeline struct {
	Name   string
	Join   *JoinPoint
	Events []Event
}

var (
	atLine   = regexp.MustCompile(`^# at (\d+)$`)
	gtidLine = regexp.MustCompile(`\bGTID (\d+-\d+-\d+)\b`)
)

// readTimelines fetches every timeline with binarc binlog fetch into
// Dir/into, decodes its files with mariadb-binlog and reads its join.json
// from the bucket.
func (cp *campaign) readTimelines(ctx context.Context, into string) ([]Timeline, error) {
	names, err := cp.timelineDirs()
	if err != nil {
		return nil, err
	}
	var tls []Timeline
	for _, name := range names {
		tl := Timeline{Name: name}
		if b, err := os.ReadFile(filepath.Join(cp.archiveDir(), name, "join.json")); err == nil {
			tl.Join = &JoinPoint{}
			if err := json.Unmarshal(b, tl.Join); err != nil {
				return nil, fmt.Errorf("join.json of %s: %w", name, err)
			}
		}
		dir := filepath.Join(cp.cfg.Dir, into, name)
		if out, err := cp.r.run(ctx, 5*time.Minute, false, "binlog", "fetch", "--store", cp.r.store, "--cluster", clusterName,
			"--timeline", name, "--dir", dir); err != nil {
			return nil, fmt.Errorf("%w: %s", err, lastLines(out, 5))
		}
		if tl.Events, err = decodeDir(ctx, dir, name); err != nil {
			return nil, err
		}
		tls = append(tls, tl)
	}
	return tls, nil
}

// timelineDirs lists the timelines in the bucket (versitygw's posix
// backend keeps each object as a file), oldest first.
func (cp *campaign) timelineDirs() ([]string, error) {
	entries, err := os.ReadDir(cp.archiveDir())
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	return names, nil
}

// decodeDir runs mariadb-binlog on every file of dir (in name order) and
// returns the GTID events.
func decodeDir(ctx context.Context, dir, timeline string) ([]Event, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*"))
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	mb, err := progs.Find("mariadb-binlog", "mysqlbinlog")
	if err != nil {
		return nil, err
	}
	var events []Event
	for _, f := range files {
		// Without gtid-strict-mode: a GTID out of order (a transaction
		// twice) is for check 2 to name, not a reason to stop reading.
		cmd := exec.CommandContext(ctx, mb, "--no-defaults", "--force-if-open", "--skip-gtid-strict-mode", f)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return nil, fmt.Errorf("mariadb-binlog %s: %w: %s", f, err, strings.TrimSpace(stderr.String()))
		}
		events = append(events, parseBinlogText(string(out), timeline, filepath.Base(f))...)
	}
	return events, nil
}

// parseBinlogText finds the GTID events in mariadb-binlog's output: each
// follows the "# at POS" line of its start.
func parseBinlogText(out, timeline, file string) []Event {
	var events []Event
	var at uint64
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		line := sc.Text()
		if m := atLine.FindStringSubmatch(line); m != nil {
			at, _ = strconv.ParseUint(m[1], 10, 64)
			continue
		}
		if strings.HasPrefix(line, "#") {
			if m := gtidLine.FindStringSubmatch(line); m != nil && strings.Contains(line, "end_log_pos") {
				events = append(events, Event{Timeline: timeline, File: file, Pos: at, GTID: m[1]})
			}
		}
	}
	return events
}

// History is the archive's history: the newest timeline's, followed back
// through each join to the timeline it continues (its parent, or the one
// before it), each timeline's transactions from its join's at up to the
// next one's previous_end, in order. Timelines that hold no binlog are no
// step of it; timelines the history left (a server that rejoined an older
// branch) are not in it. A join missing, broken, or naming no earlier
// timeline that holds binlog is reported, and the history starts there.
func History(tls []Timeline) (hist []Event, problems []string) {
	index := map[string]int{}
	var held []int
	for i, tl := range tls {
		if len(tl.Events) > 0 {
			index[tl.Name] = i
			held = append(held, i)
		}
	}
	if len(held) == 0 {
		return nil, nil
	}
	path := []int{held[len(held)-1]}
	for cur := path[0]; cur != held[0]; {
		j := tls[cur].Join
		if j == nil {
			problems = append(problems, fmt.Sprintf("timeline %s follows %s but has no join.json", tls[cur].Name, tls[held[0]].Name))
			break
		}
		if j.Broken != "" {
			problems = append(problems, fmt.Sprintf("the join of timeline %s is broken: %s", tls[cur].Name, j.Broken))
			break
		}
		from := j.Parent
		if from == "" {
			from = j.Previous
		}
		p, ok := index[from]
		if !ok || p >= cur {
			problems = append(problems, fmt.Sprintf("the join of timeline %s continues %q, which is no earlier timeline holding binlog", tls[cur].Name, from))
			break
		}
		path = append(path, p)
		cur = p
	}
	slices.Reverse(path)
	for n, i := range path {
		tl := tls[i]
		var next *JoinPoint
		if n+1 < len(path) {
			next = tls[path[n+1]].Join
		}
		for _, e := range tl.Events {
			if n > 0 && tl.Join.At.after(e.File, e.Pos) {
				continue // before the join: the timeline it continues has it
			}
			if next != nil && !next.PreviousEnd.after(e.File, e.Pos) {
				continue // after the previous_end: not in the newest's history
			}
			hist = append(hist, e)
		}
	}
	return hist, problems
}

// Duplicates lists every transaction that appears more than once along
// the history (check 2).
func Duplicates(hist []Event) []string {
	first := map[string]Event{}
	var dups []string
	for _, e := range hist {
		if f, ok := first[e.GTID]; ok {
			dups = append(dups, fmt.Sprintf("transaction %s appears twice along the archive's history: %s and %s", e.GTID, f, e))
			continue
		}
		first[e.GTID] = e
	}
	return dups
}
