package drill

import (
	"context"

	"github.com/binarc/binarc/internal/schedule"
	"github.com/robfig/cron/v3"
	"github.com/rs/zerolog"
)

// RunScheduled calls drill at every time sched names until ctx ends. A
// failed or different drill is logged (and recorded by drill itself); the
// next one runs at its time.
func RunScheduled(ctx context.Context, sched cron.Schedule, log zerolog.Logger, drill func(context.Context) error) {
	schedule.Run(ctx, sched, log, schedule.Job{Name: "drill", Run: drill})
}
