// Package schedule runs a job at the times a cron schedule names (binarc
// snapshot --schedule, binarc drill --schedule).
package schedule

import (
	"context"
	"time"

	"github.com/robfig/cron/v3"
	"github.com/rs/zerolog"
)

// Job is what Run runs: Name ("snapshot", "drill") names it in the log,
// Interrupted is added to the line logged when a shutdown stops it.
type Job struct {
	Name        string
	Interrupted string
	Run         func(context.Context) error
}

// Run calls job at every time sched names until ctx ends. A failed run is
// logged and the next one runs at its time: one bad night must not stop
// the weekly ones. It returns when ctx ends.
func Run(ctx context.Context, sched cron.Schedule, log zerolog.Logger, job Job) {
	for {
		now := time.Now().UTC()
		next := sched.Next(now)
		log.Info().Time("next_run", next).Str("in", next.Sub(now).Round(time.Second).String()).
			Msgf("next %s at %s", job.Name, next.Format(time.RFC3339))
		timer := time.NewTimer(next.Sub(now))
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
		if err := job.Run(ctx); err != nil {
			if ctx.Err() != nil {
				log.Error().Err(err).Msgf("%s interrupted by shutdown%s", job.Name, job.Interrupted)
				return
			}
			log.Error().Err(err).Msgf("%s failed; the next one runs at its scheduled time", job.Name)
		}
	}
}
