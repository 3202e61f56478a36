package snapshot

import (
	"context"
	"fmt"
	"time"

	"github.com/binarc/binarc/internal/schedule"
	"github.com/robfig/cron/v3"
	"github.com/rs/zerolog"
)

// scheduleExamples is shown with every schedule error.
const scheduleExamples = `use a descriptor (@weekly, @daily, @hourly, "@every 168h") or five cron fields "minute hour day-of-month month day-of-week", e.g. "15 3 * * 0" for Sundays at 03:15; times are UTC unless the expression starts with CRON_TZ=Area/City`

// ParseSchedule reads a --schedule value: a standard five-field cron
// expression or a descriptor, as robfig/cron parses them.
func ParseSchedule(expr string) (cron.Schedule, error) {
	if expr == "" {
		return nil, fmt.Errorf("empty schedule: %s", scheduleExamples)
	}
	s, err := cron.ParseStandard(expr)
	if err != nil {
		return nil, fmt.Errorf("schedule %q is not a cron expression (%v): %s", expr, err, scheduleExamples)
	}
	// A schedule that never fires (Feb 30) gives the zero time.
	if s.Next(time.Now().UTC()).IsZero() {
		return nil, fmt.Errorf("schedule %q never fires: %s", expr, scheduleExamples)
	}
	return s, nil
}

// RunScheduled calls take at every time sched names until ctx ends. A
// failed snapshot is logged and the next one runs at its time: one bad
// night must not stop the weekly backups. It returns when ctx ends.
func RunScheduled(ctx context.Context, sched cron.Schedule, log zerolog.Logger, take func(context.Context) error) {
	schedule.Run(ctx, sched, log, schedule.Job{Name: "snapshot", Interrupted: "; it is incomplete and was cleaned up", Run: take})
}
