package snapshot

import (
	"context"
	"sync"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/archive/objstore"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// NewMetrics makes binarc snapshot's collector.
func NewMetrics() *Metrics {
	return &Metrics{failures: prometheus.NewCounter(prometheus.CounterOpts{
		Name: "binarc_snapshot_failures_total", Help: "Snapshots that failed (each leaves nothing behind in the store).",
	})}
}

// Metrics describes the last successful  At start it is
// read from the store, so a restart does not reset the age alerts count
// from.
type Metrics struct {
	failures prometheus.Counter

	mu   sync.Mutex
	last *Manifest // newest successful snapshot known
}

var (
	descSnapshotSuccess  = prometheus.NewDesc("binarc_snapshot_last_success_timestamp_seconds", "When the newest complete snapshot finished (unix seconds), read from the store at start; 0 when there is none.", nil, nil)
	descSnapshotDuration = prometheus.NewDesc("binarc_snapshot_last_duration_seconds", "How long the newest complete snapshot took.", nil, nil)
	descSnapshotSize     = prometheus.NewDesc("binarc_snapshot_last_size_bytes", "Stored (compressed) size of the newest complete snapshot.", nil, nil)
)

// Take is Take, counted.
func (m *Metrics) Take(ctx context.Context, cfg Config) (*Manifest, error) {
	man, err := Take(ctx, cfg)
	if err != nil {
		if ctx.Err() == nil { // not a shutdown
			m.failures.Inc()
		}
		return nil, err
	}
	m.record(man)
	return man, nil
}

func (m *Metrics) record(man *Manifest) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.last == nil || man.Finished.After(m.last.Finished) {
		m.last = man
	}
}

// Seed reads the newest complete snapshot from the store.
func (m *Metrics) Seed(ctx context.Context, log zerolog.Logger, store objstore.Store, layout archive.Layout) {
	entries, err := List(ctx, store, layout, nil)
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
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- descSnapshotSuccess
	ch <- descSnapshotDuration
	ch <- descSnapshotSize
	m.failures.Describe(ch)
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
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
