package restore

import (
	"fmt"
	"time"
)

// checkLocalTime refuses a local time that names two instants (the hour
// repeated when clocks go back) or none (the hour skipped when they go
// forward): time.ParseInLocation silently picks one, and a restore must
// not guess which side of a DROP the operator meant.
// wall is the clock reading as written, parsed as if in UTC.
func checkLocalTime(arg string, wall time.Time, loc *time.Location) error {
	var valid []time.Time
	var offsets []int
	for _, probe := range []time.Time{wall.Add(-6 * time.Hour), wall.Add(6 * time.Hour)} {
		_, off := probe.In(loc).Zone()
		if len(offsets) > 0 && offsets[0] == off {
			continue
		}
		offsets = append(offsets, off)
		c := wall.Add(-time.Duration(off) * time.Second)
		if c.In(loc).Format(time.DateTime) == wall.Format(time.DateTime) {
			valid = append(valid, c)
		}
	}
	name := func(c time.Time) string {
		return fmt.Sprintf("%s (%s)", c.In(loc).Format(time.RFC3339), c.UTC().Format(time.RFC3339))
	}
	switch {
	case len(valid) == 2:
		return fmt.Errorf("--to %q is ambiguous: clocks in %s went back, and it names two instants, %s and %s; give one with its offset",
			arg, loc, name(valid[0]), name(valid[1]))
	case len(valid) == 0 && len(offsets) == 2:
		a := wall.Add(-time.Duration(offsets[0]) * time.Second)
		b := wall.Add(-time.Duration(offsets[1]) * time.Second)
		return fmt.Errorf("--to %q does not exist: clocks in %s skipped it; it reads as %s or %s; give one with its offset",
			arg, loc, fmtOffset(wall, offsets[0], a), fmtOffset(wall, offsets[1], b))
	}
	return nil
}

// fmtOffset names the wall clock read with an offset, and its instant.
func fmtOffset(wall time.Time, off int, at time.Time) string {
	return fmt.Sprintf("%s%s (%s)", wall.Format("2006-01-02T15:04:05"), offsetString(off), at.UTC().Format(time.RFC3339))
}

func offsetString(off int) string {
	sign := '+'
	if off < 0 {
		sign, off = '-', -off
	}
	return fmt.Sprintf("%c%02d:%02d", sign, off/3600, off%3600/60)
}
