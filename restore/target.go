package restore

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/replication"
)

// TargetKind says what a restore target names.
type TargetKind int

// The kinds of restore target.
const (
	TargetTime     TargetKind = iota + 1 // the state just before the first transaction at or after a time
	TargetPosition                       // the state at a binlog position (a transaction boundary)
	TargetGTID                           // the state just after a transaction
	TargetLatest                         // everything archived
)

// Target is where a restore stops.
type Target struct {
	Kind     TargetKind
	Time     time.Time
	Position replication.Position
	// Timeline names the timeline of Position; empty when the file name
	// alone was given (refused if several timelines hold it).
	Timeline string
	GTID     string
}

func (t Target) String() string {
	switch t.Kind {
	case TargetTime:
		return "time " + t.Time.UTC().Format(time.RFC3339)
	case TargetPosition:
		if t.Timeline != "" {
			return "position " + t.Timeline + "/" + t.Position.String()
		}
		return "position " + t.Position.String()
	case TargetGTID:
		return "GTID " + t.GTID
	default:
		return "latest"
	}
}

var (
	mariadbGTID = regexp.MustCompile(`^\d+-\d+-\d+$`)
	mysqlGTID   = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}:\d+$`)
)

// IsGTID tells whether s is one GTID: MariaDB domain-server-seq or MySQL
// uuid:n.
func IsGTID(s string) bool { return mariadbGTID.MatchString(s) || mysqlGTID.MatchString(s) }

const targetForms = "a time (2026-11-20T13:45:00Z, 2026-11-20T14:45:00+01:00, or \"2026-11-20 14:45:00 Europe/Paris\"), " +
	"a binlog position (mysql-bin.000042:1187, or TIMELINE/mysql-bin.000042:1187 when several timelines hold the file), a GTID (0-1-2345 or uuid:n), or latest"

// ParseTarget reads a --to value. A time must carry its zone: a restore
// run at 3 a.m. must not guess between UTC and local time.
func ParseTarget(s string) (Target, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return Target{}, fmt.Errorf("no restore target: give %s", targetForms)
	case s == "latest":
		return Target{Kind: TargetLatest}, nil
	case IsGTID(s):
		return Target{Kind: TargetGTID, GTID: s}, nil
	}
	if tl, pos, ok, err := ParsePosition(s); ok {
		if err != nil {
			return Target{}, fmt.Errorf("--to %q: %w", s, err)
		}
		if pos.Offset < replication.MagicLen {
			return Target{}, fmt.Errorf("--to %q: %d is not a position in the file (a number, at least 4)", s, pos.Offset)
		}
		return Target{Kind: TargetPosition, Position: pos, Timeline: tl}, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05Z07:00"} {
		if t, err := time.Parse(layout, s); err == nil {
			return Target{Kind: TargetTime, Time: t}, nil
		}
	}
	if i := strings.LastIndexByte(s, ' '); i > 0 {
		if loc, err := time.LoadLocation(s[i+1:]); err == nil {
			for _, layout := range []string{"2006-01-02 15:04:05", "2006-01-02T15:04:05"} {
				if t, err := time.ParseInLocation(layout, s[:i], loc); err == nil {
					wall, _ := time.Parse(layout, s[:i])
					if err := checkLocalTime(s, wall, loc); err != nil {
						return Target{}, err
					}
					return Target{Kind: TargetTime, Time: t}, nil
				}
			}
		}
	}
	if _, err := time.Parse("2006-01-02T15:04:05", strings.Replace(s, " ", "T", 1)); err == nil {
		return Target{}, fmt.Errorf("--to %q: the time has no zone; add one: Z for UTC, an offset like +01:00, or a name like \"%s Europe/Paris\"", s, s)
	}
	return Target{}, fmt.Errorf("--to %q: not understood; give %s", s, targetForms)
}

// ParsePosition reads FILE:POS or TIMELINE/FILE:POS. ok is false when s
// does not look like a binlog position at all; err says what is wrong
// with one that does.
func ParsePosition(s string) (timeline string, pos replication.Position, ok bool, err error) {
	file, off, found := strings.Cut(s, ":")
	if !found {
		return "", pos, false, nil
	}
	if tl, f, qualified := strings.Cut(file, "/"); qualified {
		if _, _, perr := archive.ParseTimeline(tl); perr != nil {
			return "", pos, true, fmt.Errorf("%q is not a timeline name (binarc ls lists them, e.g. 000002-20261125T031500Z)", tl)
		}
		timeline, file = tl, f
	}
	if archive.ValidateName("binlog file", file) != nil {
		return "", pos, false, nil
	}
	if _, _, isBinlog := replication.SplitBinlogName(file); !isBinlog {
		return "", pos, false, nil
	}
	n, perr := strconv.ParseUint(off, 10, 64)
	if perr != nil {
		return "", pos, true, fmt.Errorf("%q is not a position in the file (a number)", off)
	}
	return timeline, replication.Position{File: file, Offset: n}, true, nil
}
