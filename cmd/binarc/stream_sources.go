package main

import (
	"context"
	"os"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/replication"
	"github.com/binarc/binarc/restore"
	"github.com/rs/zerolog"
)

// configs parses a --source that may name several servers
// (mysql://USER@HOST1:PORT1,HOST2:PORT2): all get the same user, password,
// binarc server id and TLS settings.
func (f sourceFlags) configs(log zerolog.Logger) ([]replication.Config, error) {
	cfgs, err := f.sources(log).Parse()
	if err != nil {
		return nil, usageError{err}
	}
	return cfgs, nil
}

// joinRecorder records the joins between timelines as they become final.
func joinRecorder(cat archive.Catalog, log zerolog.Logger) func(ctx context.Context) (int, error) {
	return func(ctx context.Context) (int, error) {
		pending, recorded, err := restore.RecordJoins(ctx, cat, os.TempDir())
		for _, j := range recorded {
			log.Info().Str("timeline", j.Timeline).Str("previous", j.Previous).Strs("lost", j.Lost).Strs("errant", j.Errant).
				Time("switch_time", j.SwitchTime).Msg("recorded the join between timelines: " + j.String())
		}
		return pending, err
	}
}
