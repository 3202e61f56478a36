package drill

import (
	"context"
	"time"

	"github.com/robfig/cron/v3"
	"github.com/rs/zerolog"
)

// RunScheduled calls drill at every time sched names until ctx ends. A
// failed or different drill is logged (and recorded by drill itself); the
// next one runs at its time.
func RunScheduled(ctx context.Context, sched cron.Schedule, log zerolog.Logger, drill func(context.Context) error) {
	for {
		now := time.Now().UTC()
		next := sched.Next(now)
		log.Info().Time("next_run", next).Msgf("next drill at %s", next.Format(time.RFC3339))
		timer := time.NewTimer(next.Sub(now))
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
		if err := drill(ctx); err != nil {
			if ctx.Err() != nil {
				log.Error().Err(err).Msg("drill interrupted by shutdown")
				return
			}
			log.Error().Err(err).Msg("drill failed; the next one runs at its scheduled time")
		}
	}
}
