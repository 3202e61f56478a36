package main

import (
	"time"

	"github.com/binarc/binarc/archive"
	"github.com/prometheus/client_golang/prometheus"
)

// semiSyncFlags are binarc stream's zero-loss mode.
type semiSyncFlags struct {
	SemiSync           bool   `env:"BINARC_SEMI_SYNC" help:"Register as a semi-synchronous replica and acknowledge each transaction only once it is durable (see --semi-sync-durability): with rpl_semi_sync_master_wait_point=AFTER_SYNC on the primary, no acknowledged commit is lost when the primary dies."`
	SemiSyncDurability string `env:"BINARC_SEMI_SYNC_DURABILITY" default:"store" enum:"store,local" help:"With --semi-sync, acknowledge once the segment holding the commit is in the store (store), or fsynced to --spool-dir (local; the spool is uploaded as usual and replayed into the store at the next start after a crash)."`
	SpoolDir           string `env:"BINARC_SPOOL_DIR" type:"path" placeholder:"DIR" help:"Local directory for --semi-sync-durability local, on a disk that survives a restart of binarc."`
}

func (f semiSyncFlags) config(m *semiSyncMetrics) (archive.SemiSyncConfig, error) {
	if !f.SemiSync && (f.SpoolDir != "" || f.SemiSyncDurability != archive.DurabilityStore) {
		return archive.SemiSyncConfig{}, usageError{errorf("--semi-sync-durability and --spool-dir only apply with --semi-sync")}
	}
	if f.SemiSync && f.SemiSyncDurability == archive.DurabilityStore && f.SpoolDir != "" {
		return archive.SemiSyncConfig{}, usageError{errorf("--spool-dir is only used with --semi-sync-durability local")}
	}
	return archive.SemiSyncConfig{Enabled: f.SemiSync, Durability: f.SemiSyncDurability, SpoolDir: f.SpoolDir, Acked: m.acked}, nil
}

// semiSyncMetrics are the semi-sync series of binarc stream.
type semiSyncMetrics struct {
	streamMetrics *streamMetrics // its archiver, once the store is open
	ackLatency    prometheus.Histogram
}

func newSemiSyncMetrics(sm *streamMetrics) *semiSyncMetrics {
	return &semiSyncMetrics{streamMetrics: sm, ackLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "binarc_semi_sync_ack_latency_seconds",
		Help:    "Per acknowledged transaction, from the primary's request (its commit reached binarc) to binarc's acknowledgement (durable): what semi-sync adds to the commit.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10},
	})}
}

func (m *semiSyncMetrics) acked(latency time.Duration) { m.ackLatency.Observe(latency.Seconds()) }

var (
	descSemiAcks    = newDesc("binarc_semi_sync_acks_total", "Semi-sync acknowledgements sent to the primary (one covers every transaction before it).")
	descSemiTxns    = newDesc("binarc_semi_sync_acked_transactions_total", "Transactions the semi-sync acknowledgements covered.")
	descSemiStatus  = newDesc("binarc_semi_sync_primary_status", "The primary's Rpl_semi_sync_master_status, polled: 1 while its commits wait for a semi-sync replica, 0 when it is off or fell back to asynchronous after rpl_semi_sync_master_timeout. Absent while the primary cannot be asked.")
	descSemiEnabled = newDesc("binarc_semi_sync_primary_enabled", "The primary's rpl_semi_sync_master_enabled, polled: 1 when it is set to wait for semi-sync replicas.")
)

// Describe implements prometheus.Collector.
func (m *semiSyncMetrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descSemiAcks, descSemiTxns, descSemiStatus, descSemiEnabled} {
		ch <- d
	}
	m.ackLatency.Describe(ch)
}

// Collect implements prometheus.Collector.
func (m *semiSyncMetrics) Collect(ch chan<- prometheus.Metric) {
	m.ackLatency.Collect(ch)
	a := m.streamMetrics.archiver.Load()
	if a == nil {
		return
	}
	st := a.SemiSyncStatus()
	ch <- prometheus.MustNewConstMetric(descSemiAcks, prometheus.CounterValue, float64(st.AcksSent))
	ch <- prometheus.MustNewConstMetric(descSemiTxns, prometheus.CounterValue, float64(st.TransactionsAcked))
	if !st.PrimaryChecked.IsZero() {
		ch <- prometheus.MustNewConstMetric(descSemiStatus, prometheus.GaugeValue, boolFloat(st.PrimaryState.Active))
		ch <- prometheus.MustNewConstMetric(descSemiEnabled, prometheus.GaugeValue, boolFloat(st.PrimaryState.Enabled))
	}
}
