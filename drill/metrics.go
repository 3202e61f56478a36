package drill

import (
	"context"
	"sync"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/archive/objstore"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

var (
	descLastSuccess = prometheus.NewDesc("binarc_drill_last_success_timestamp_seconds",
		"When the newest drill that restored and found every table equal finished (unix seconds), read from the store at start; 0 when there is none.", nil, nil)
	descRestore = prometheus.NewDesc("binarc_drill_restore_seconds",
		"How long the newest drill's restore took, to a ready data directory: the recovery time a real restore needs.", nil, nil)
	descDifferent = prometheus.NewDesc("binarc_drill_tables_different",
		"Tables the newest drill found different from the live cluster (a failed drill counts as 1).", nil, nil)
)

// Metrics exports the drills' outcome. At start it is read from the
// store (Seed), so a restart does not reset what the alerts count from.
type Metrics struct {
	mu      sync.Mutex
	last    *Report // newest drill
	success *Report // newest successful drill
}

// Record notes a drill's report.
func (m *Metrics) Record(r *Report) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.last == nil || !r.Started.Before(m.last.Started) {
		m.last = r
	}
	if r.Succeeded() && (m.success == nil || !r.Started.Before(m.success.Started)) {
		m.success = r
	}
}

// Seed reads the newest drill records from the store.
func (m *Metrics) Seed(ctx context.Context, log zerolog.Logger, store objstore.Store, layout archive.Layout) {
	last, err := Last(ctx, store, layout)
	if err == nil && last != nil {
		m.Record(last)
	}
	success, err2 := LastSuccess(ctx, store, layout)
	if err2 == nil && success != nil {
		m.Record(success)
	}
	if err := firstErr(err, err2); err != nil {
		log.Warn().Err(err).Msg("could not read the drill records: the drill metrics start from this run")
	}
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- descLastSuccess
	ch <- descRestore
	ch <- descDifferent
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var success, restore, different float64
	if m.success != nil {
		success = float64(m.success.Finished.Unix())
	}
	if m.last != nil {
		restore = m.last.RestoreSeconds
		different = float64(m.last.Count(Different))
		if m.last.Error != "" {
			different = 1
		}
	}
	ch <- prometheus.MustNewConstMetric(descLastSuccess, prometheus.GaugeValue, success)
	ch <- prometheus.MustNewConstMetric(descRestore, prometheus.GaugeValue, restore)
	ch <- prometheus.MustNewConstMetric(descDifferent, prometheus.GaugeValue, different)
}
