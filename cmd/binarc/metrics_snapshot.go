package main

import (
	"context"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/archive/objstore"
	"github.com/binarc/binarc/snapshot"
	"github.com/rs/zerolog"
)

// takeFunc takes one snapshot: snapshot.Take, or it wrapped to be counted.
type takeFunc func(context.Context, snapshot.Config) (*snapshot.Manifest, error)

// serveSnapshot serves binarc snapshot's metrics, if --metrics-addr is
// set, and returns the take function to use: it records each outcome.
func (f metricsFlags) serveSnapshot(ctx context.Context, log zerolog.Logger, cluster string, store objstore.Store, layout archive.Layout) (stop func(), take takeFunc, err error) {
	if f.MetricsAddr == "" {
		return func() {}, snapshot.Take, nil
	}
	m := snapshot.NewMetrics()
	stop, err = f.serve(log, cluster, func() error { return nil }, m)
	if err != nil {
		return nil, nil, err
	}
	go m.Seed(ctx, log, store, layout)
	return stop, m.Take, nil
}
