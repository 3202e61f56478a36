package stream

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// SemiSyncMetrics are the semi-sync series of binarc stream.
type SemiSyncMetrics struct {
	streamMetrics *Metrics // its archiver, once the store is open
	ackLatency    prometheus.Histogram
}

// NewSemiSyncMetrics makes the collector; it reads the archiver m is
// connected to.
func NewSemiSyncMetrics(sm *Metrics) *SemiSyncMetrics {
	return &SemiSyncMetrics{streamMetrics: sm, ackLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "binarc_semi_sync_ack_latency_seconds",
		Help:    "Per acknowledged transaction, from the primary's request (its commit reached binarc) to binarc's acknowledgement (durable): what semi-sync adds to the commit.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10},
	})}
}

// Acked observes one acknowledgement's latency (SemiSyncConfig.Acked).
func (m *SemiSyncMetrics) Acked(latency time.Duration) { m.ackLatency.Observe(latency.Seconds()) }

var (
	descSemiAcks    = newDesc("binarc_semi_sync_acks_total", "Semi-sync acknowledgements sent to the primary (one covers every transaction before it).")
	descSemiTxns    = newDesc("binarc_semi_sync_acked_transactions_total", "Transactions the semi-sync acknowledgements covered.")
	descSemiStatus  = newDesc("binarc_semi_sync_primary_status", "The primary's Rpl_semi_sync_master_status, polled: 1 while its commits wait for a semi-sync replica, 0 when it is off or fell back to asynchronous after rpl_semi_sync_master_timeout. Absent while the primary cannot be asked.")
	descSemiEnabled = newDesc("binarc_semi_sync_primary_enabled", "The primary's rpl_semi_sync_master_enabled, polled: 1 when it is set to wait for semi-sync replicas.")
	descSemiUnprot  = newDesc("binarc_semi_sync_unprotected", "1 while binarc counts the commits it archives as not zero-loss protected (the primary seen not waiting for it), recorded in the archive as an unprotected range; 0 while the primary waits.")
	descSemiFalls   = newDesc("binarc_semi_sync_unprotected_ranges_total", "Unprotected ranges opened: times the primary was seen not waiting for binarc (each recorded in the archive; binarc ls lists them).")
)

// Describe implements prometheus.Collector.
func (m *SemiSyncMetrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descSemiAcks, descSemiTxns, descSemiStatus, descSemiEnabled, descSemiUnprot, descSemiFalls} {
		ch <- d
	}
	m.ackLatency.Describe(ch)
}

// Collect implements prometheus.Collector.
func (m *SemiSyncMetrics) Collect(ch chan<- prometheus.Metric) {
	m.ackLatency.Collect(ch)
	a := m.streamMetrics.archiver.Load()
	if a == nil {
		return
	}
	st := a.SemiSyncStatus()
	ch <- prometheus.MustNewConstMetric(descSemiAcks, prometheus.CounterValue, float64(st.AcksSent))
	ch <- prometheus.MustNewConstMetric(descSemiTxns, prometheus.CounterValue, float64(st.TransactionsAcked))
	if st.Enabled {
		ch <- prometheus.MustNewConstMetric(descSemiUnprot, prometheus.GaugeValue, boolFloat(st.Unprotected))
		ch <- prometheus.MustNewConstMetric(descSemiFalls, prometheus.CounterValue, float64(st.Fallbacks))
	}
	if !st.PrimaryChecked.IsZero() {
		ch <- prometheus.MustNewConstMetric(descSemiStatus, prometheus.GaugeValue, boolFloat(st.PrimaryState.Active))
		ch <- prometheus.MustNewConstMetric(descSemiEnabled, prometheus.GaugeValue, boolFloat(st.PrimaryState.Enabled))
	}
}
