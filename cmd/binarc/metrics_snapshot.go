package main

import (
	"context"
	"sync"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/archive/objstore"
	"github.com/binarc/binarc/snapshot"
	"github.com/prometheus/client_golang/prometheus"
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
	m := &snapshotMetrics{failures: prometheus.NewCounter(prometheus.CounterOpts{
		Name: "binarc_snapshot_failures_total", Help: "Snapshots that failed (each leaves nothing behind in the store).",
	})}
	stop, err = f.serve(log, cluster, func() error { return nil }, m)
	if err != nil {
		return nil, nil, err
	}
	go m.seed(ctx, log, store, layout)
	return stop, m.take, nil
}

// snapshotMetrics describes the last successful snapshot. At start it is
// read from the store, so a restart does not reset the age alerts count
// from.
type snapshotMetrics struct {
	failures prometheus.Counter

	mu   sync.Mutex
	last *snapshot.Manifest // newest successful snapshot known
}

var (
	descSnapshotSuccess  = newDesc("binarc_snapshot_last_success_timestamp_seconds", "When the newest complete snapshot finished (unix seconds), read from the store at start; 0 when there is none.")
	descSnapshotDuration = newDesc("binarc_snapshot_last_duration_seconds", "How long the newest complete snapshot took.")
	descSnapshotSize     = newDesc("binarc_snapshot_last_size_bytes", "Stored (compressed) size of the newest complete snapshot.")
)

func (m *snapshotMetrics) take(ctx context.Context, cfg snapshot.Config) (*snapshot.Manifest, error) {
	man, err := snapshot.Take(ctx, cfg)
	if err != nil {
		if ctx.Err() == nil { // not a shutdown
			m.failures.Inc()
		}
		return nil, err
	}
	m.record(man)
	return man, nil
}

func (m *snapshotMetrics) record(man *snapshot.Manifest) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.last == nil || man.Finished.After(m.last.Finished) {
		m.last = man
	}
}

// seed reads the newest complete snapshot from the store.
func (m *snapshotMetrics) seed(ctx context.Context, log zerolog.Logger, store objstore.Store, layout archive.Layout) {
	entries, err := snapshot.List(ctx, store, layout)
	if err != nil {
		if ctx.Err() == nil {
			log.Warn().Err(err).Msg("metrics: could not read the stored snapshots; binarc_snapshot_last_* start from the next snapshot taken")
		}
		return
	}
	for i := len(entries) - 1; i >= 0; i-- {
		if entries[i].Complete {
			m.record(entries[i].Manifest)
			return
		}
	}
}

// Describe implements prometheus.Collector.
func (m *snapshotMetrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- descSnapshotSuccess
	ch <- descSnapshotDuration
	ch <- descSnapshotSize
	m.failures.Describe(ch)
}

// Collect implements prometheus.Collector.
func (m *snapshotMetrics) Collect(ch chan<- prometheus.Metric) {
	m.mu.Lock()
	last := m.last
	m.mu.Unlock()
	success := 0.0
	if last != nil {
		success = float64(last.Finished.Unix())
		ch <- prometheus.MustNewConstMetric(descSnapshotDuration, prometheus.GaugeValue, last.Finished.Sub(last.Started).Seconds())
		ch <- prometheus.MustNewConstMetric(descSnapshotSize, prometheus.GaugeValue, float64(last.StoredSize))
	}
	ch <- prometheus.MustNewConstMetric(descSnapshotSuccess, prometheus.GaugeValue, success)
	m.failures.Collect(ch)
}
