package stream

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/replication"
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics is binarc stream's Observer, and a Prometheus collector that
// reads the archiver's Status at each scrape.
type Metrics struct {
	archiver atomic.Pointer[Archiver] // nil until the store is open

	storedBytes   prometheus.Counter
	storedEvents  prometheus.Counter
	segments      prometheus.Counter
	retries       prometheus.Counter
	storeErrors   atomic.Uint64
	uploadLatency prometheus.Histogram
	durableDelay  prometheus.Histogram
}

var _ Observer = (*Metrics)(nil)

// StoreOutageNotReady is how long the store may fail before Ready says
// so: a blip is retried and costs nothing, a long outage grows the loss
// window.
const StoreOutageNotReady = 30 * time.Second

// latencyBuckets span a fast store (tens of ms) to a long outage.
var latencyBuckets = []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300}

// NewMetrics makes the collector; SetArchiver connects it once the
// archiver exists.
func NewMetrics() *Metrics {
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	}
	return &Metrics{
		storedBytes:  counter("binarc_stored_bytes_total", "Compressed bytes of segments stored."),
		storedEvents: counter("binarc_stored_events_total", "Binlog events in segments stored."),
		segments:     counter("binarc_segments_uploaded_total", "Segments stored."),
		retries:      counter("binarc_upload_retries_total", "Failed segment uploads, each retried with backoff."),
		uploadLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "binarc_upload_latency_seconds", Help: "Segment upload time, from sealed to stored (retries included).",
			Buckets: latencyBuckets,
		}),
		durableDelay: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "binarc_receive_to_durable_seconds", Help: "Per segment, from its first byte's arrival from the primary to its being durable: the loss window each segment had.",
			Buckets: latencyBuckets,
		}),
	}
}

// SegmentStored implements Observer.
func (m *Metrics) SegmentStored(s UploadStats) {
	m.storedBytes.Add(float64(s.Stored))
	m.storedEvents.Add(float64(s.Segment.Events))
	m.segments.Inc()
	m.uploadLatency.Observe(s.Latency.Seconds())
}

// DurableAdvanced implements Observer.
func (m *Metrics) DurableAdvanced(_ Durable, received time.Time) {
	if !received.IsZero() {
		m.durableDelay.Observe(time.Since(received).Seconds())
	}
}

// UploadRetry implements Observer.
func (m *Metrics) UploadRetry(error) {
	m.retries.Inc()
	m.storeErrors.Add(1)
}

// newDesc is a Prometheus description without constant labels.
func newDesc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

// The series read from Status at each scrape.
var (
	descConnected     = newDesc("binarc_primary_connected", "1 while streaming from the primary, 0 otherwise.")
	descLeaseHeld     = newDesc("binarc_lease_held", "1 while this process holds the archive's single-writer lease.")
	descReceivedBytes = newDesc("binarc_received_bytes_total", "Binlog bytes received from the primary.")
	descReceivedEvts  = newDesc("binarc_received_events_total", "Binlog events received from the primary.")
	descLastEvent     = newDesc("binarc_received_event_timestamp_seconds", "Header time (unix seconds) of the newest event received from the primary.")
	descDurableSeq    = newDesc("binarc_durable_file_sequence", "Sequence number of the binlog file of the durable position (42 for mysql-bin.000042).")
	descDurableOffset = newDesc("binarc_durable_offset_bytes", "Offset in its binlog file of the durable position: everything before it is stored.")
	descDurableInfo   = newDesc("binarc_durable_position_info", "The durable position's timeline and binlog file, as labels; always 1.", "timeline", "file")
	descDurableTime   = newDesc("binarc_durable_event_timestamp_seconds", "Header time (unix seconds) of the last durable event.")
	descTimeline      = newDesc("binarc_timeline", "Sequence number of the timeline being archived; it goes up when the archive breaks (a gap).")
	descLossWindow    = newDesc("binarc_loss_window_seconds", "What a crash of the primary would lose now: age of the oldest received byte not yet durable; 0 when everything the primary reported is stored.")
	descStoreOutage   = newDesc("binarc_store_outage_seconds", "How long the object store has been failing; 0 while it works.")
	descErrors        = newDesc("binarc_errors_total", "Errors, by kind: primary (connection to the primary lost), store (a segment upload failed and is retried).", "kind")
)

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descConnected, descLeaseHeld, descReceivedBytes, descReceivedEvts, descLastEvent,
		descDurableSeq, descDurableOffset, descDurableInfo, descDurableTime, descTimeline, descLossWindow, descStoreOutage, descErrors} {
		ch <- d
	}
	for _, c := range m.observed() {
		c.Describe(ch)
	}
}

func (m *Metrics) observed() []prometheus.Collector {
	return []prometheus.Collector{m.storedBytes, m.storedEvents, m.segments, m.retries, m.uploadLatency, m.durableDelay}
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	now := time.Now()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for _, c := range m.observed() {
		c.Collect(ch)
	}
	a := m.archiver.Load()
	if a == nil {
		gauge(descConnected, 0)
		gauge(descLeaseHeld, 0)
		return
	}
	st := a.Status()
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	gauge(descConnected, boolFloat(st.Connected))
	gauge(descLeaseHeld, boolFloat(st.LeaseHeld))
	counter(descReceivedBytes, float64(st.BytesReceived))
	counter(descReceivedEvts, float64(st.EventsReceived))
	counter(descErrors, float64(st.Disconnects), "primary")
	counter(descErrors, float64(m.storeErrors.Load()), "store")
	if !st.LastEventTime.IsZero() {
		gauge(descLastEvent, float64(st.LastEventTime.Unix()))
	}
	if d := st.Durable; d.Timeline != "" {
		gauge(descDurableOffset, float64(d.Position.Offset))
		gauge(descDurableInfo, 1, d.Timeline, d.Position.File)
		if _, seq, ok := replication.SplitBinlogName(d.Position.File); ok {
			gauge(descDurableSeq, float64(seq))
		}
		if !d.EventTime.IsZero() {
			gauge(descDurableTime, float64(d.EventTime.Unix()))
		}
		if seq, _, err := archive.ParseTimeline(d.Timeline); err == nil {
			gauge(descTimeline, float64(seq))
		}
	}
	gauge(descLossWindow, a.LossWindow(now).Seconds())
	outage := 0.0
	if !st.StoreFailingSince.IsZero() {
		outage = now.Sub(st.StoreFailingSince).Seconds()
	}
	gauge(descStoreOutage, outage)
}

// SetArchiver makes the collector read a's Status.
func (m *Metrics) SetArchiver(a *Archiver) { m.archiver.Store(a) }

// Ready is /readyz of binarc stream: streaming from the primary, and the
// store not failing for long.
func (m *Metrics) Ready() error {
	a := m.archiver.Load()
	if a == nil {
		return errors.New("starting: waiting for the object store")
	}
	st := a.Status()
	switch {
	case !st.LeaseHeld:
		return errors.New("not archiving yet: waiting for the primary and the archive's lease")
	case !st.Connected:
		return errors.New("not connected to the primary")
	case !st.StoreFailingSince.IsZero() && time.Since(st.StoreFailingSince) > StoreOutageNotReady:
		return fmt.Errorf("the object store has been failing for %s", time.Since(st.StoreFailingSince).Round(time.Second))
	}
	return nil
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
