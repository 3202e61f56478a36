// Package statuspage renders what can be restored right now as one
// self-contained HTML page (no script, no external asset): the restorable
// window drawn as a timeline across the archive's timelines and the joins
// between them (failovers and flips marked), the snapshots on it, the
// gaps, the archive's lag and the last drill, each with a text fallback.
// binarc ls --html writes it to a file; binarc stream serves it at / on
// --metrics-addr. It renders a retention.Status; it reads nothing itself.
package statuspage

import (
	"context"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/retention"
	"github.com/prometheus/client_golang/prometheus"
)

// Page is what the page shows.
type Page struct {
	Status *retention.Status
	// Now is when the page was made: the right end of the drawing.
	Now time.Time
	// LastDrill is one line about the newest drill ("" when none ran).
	LastDrill string
}

// Render writes the page.
func Render(w io.Writer, p Page) error {
	if p.Status == nil {
		return fmt.Errorf("statuspage: no status to render")
	}
	if p.Now.IsZero() {
		p.Now = time.Now()
	}
	return pageTemplate.Execute(w, build(p))
}

// view is the page's data, laid out: every mark has its x position (in
// percent of the drawing's width) and its text.
type view struct {
	Cluster    string
	Now        string
	From, To   string
	Timelines  []timelineView
	Joins      []joinView
	Snapshots  []snapshotView
	Gaps       []gapView
	Windows    []windowView
	Restorable []restorableView
	Lag        string
	LastDrill  string
	Height     int
}

type timelineView struct {
	Name, Source, From, To, Reason string
	Row                            int
	Y                              int
	X, W                           float64
}

type joinView struct {
	Timeline, Previous, Time, Text string
	Broken                         bool
	X                              float64
	Y1, Y2                         int
}

type snapshotView struct {
	ID, Time, Timeline, Text string
	Complete                 bool
	X                        float64
	Y                        int
}

type gapView struct {
	Timeline, File, Time, Text string
	X                          float64
	Y                          int
}

type restorableView struct {
	Text     string
	CutShort bool
}

type windowView struct {
	Text     string
	X, W     float64
	Y        int
	CutShort bool
}

const (
	rowHeight = 46
	top       = 30
)

func build(p Page) view {
	st := p.Status
	v := view{Cluster: st.Cluster, Now: stamp(p.Now), LastDrill: p.LastDrill}
	if st.Lag != nil {
		v.Lag = st.Lag.Summary
	}
	lo, hi := span(st, p.Now)
	v.From, v.To = stamp(lo), stamp(hi)
	x := func(t time.Time) float64 {
		if hi.Equal(lo) {
			return 0
		}
		f := float64(t.Sub(lo)) / float64(hi.Sub(lo)) * 100
		return min(max(f, 0), 100)
	}
	row := map[string]int{}
	for i, ts := range st.Timelines {
		row[ts.Name] = i
		first, last := timelineSpan(ts)
		tv := timelineView{Name: ts.Name, From: stamp(first), To: stamp(last), Row: i, Y: top + i*rowHeight, X: x(first), W: max(x(last)-x(first), 0.4)}
		if ts.Info != nil {
			tv.Source = fmt.Sprintf("%s (server_id %d)", ts.Info.SourceAddr, ts.Info.SourceServerID)
			tv.Reason = ts.Info.Reason
		}
		v.Timelines = append(v.Timelines, tv)
		for _, f := range ts.Files {
			if f.Gap != nil {
				at := f.LastEventTime
				if at.IsZero() {
					at = first
				}
				v.Gaps = append(v.Gaps, gapView{Timeline: ts.Name, File: f.File, Time: stamp(at), Text: f.Gap.Error(), X: x(at), Y: tv.Y})
			}
		}
	}
	for i, j := range st.Joins {
		if j == nil || i == 0 {
			continue
		}
		at := j.SwitchTime
		v.Joins = append(v.Joins, joinView{Timeline: j.Timeline, Previous: j.Previous, Time: stamp(at), Text: j.String(), Broken: j.Broken != "",
			X: x(at), Y1: top + row[j.From()]*rowHeight, Y2: top + row[j.Timeline]*rowHeight})
	}
	for _, s := range st.Snapshots {
		sv := snapshotView{ID: s.ID, Time: stamp(s.Time), Complete: s.Complete, X: x(s.Time), Y: top + snapshotRow(st, s.Time)*rowHeight}
		sv.Timeline = st.Timelines[min(snapshotRow(st, s.Time), max(len(st.Timelines)-1, 0))].Name
		sv.Text = "snapshot " + s.ID
		if !s.Complete {
			sv.Text += " (incomplete: " + orDefault(s.Problem, "failed or still running") + ")"
		}
		v.Snapshots = append(v.Snapshots, sv)
	}
	for _, w := range st.Windows {
		// A window that crosses joins is drawn on each timeline's row,
		// from one switch to the next.
		tls, at := []string{w.Timeline}, []time.Time{w.From}
		for _, j := range w.Joins {
			tls, at = append(tls, j.Timeline), append(at, j.SwitchTime)
		}
		at = append(at, w.To)
		v.Restorable = append(v.Restorable, restorableView{Text: w.String(), CutShort: w.CutShort != ""})
		for i, tl := range tls {
			from, to := at[i], at[i+1]
			v.Windows = append(v.Windows, windowView{Text: w.String(), X: x(from), W: max(x(to)-x(from), 0.4), Y: top + row[tl]*rowHeight, CutShort: w.CutShort != ""})
		}
	}
	v.Height = top + max(len(st.Timelines), 1)*rowHeight + 10
	return v
}

// span is the drawing's time range: from the oldest snapshot or event to
// now.
func span(st *retention.Status, now time.Time) (lo, hi time.Time) {
	lo, hi = now, now
	for _, ts := range st.Timelines {
		if first, _ := timelineSpan(ts); !first.IsZero() && first.Before(lo) {
			lo = first
		}
	}
	for _, s := range st.Snapshots {
		if !s.Time.IsZero() && s.Time.Before(lo) {
			lo = s.Time
		}
	}
	if hi.Sub(lo) < time.Minute {
		lo = hi.Add(-time.Minute)
	}
	return lo, hi
}

// timelineSpan is the first and last event time of a timeline's files.
func timelineSpan(ts *archive.TimelineState) (first, last time.Time) {
	for _, f := range ts.Files {
		if !f.FirstEventTime.IsZero() && (first.IsZero() || f.FirstEventTime.Before(first)) {
			first = f.FirstEventTime
		}
		if f.LastEventTime.After(last) {
			last = f.LastEventTime
		}
	}
	if first.IsZero() && ts.Info != nil {
		first = ts.Info.Created
	}
	if last.IsZero() {
		last = first
	}
	return first, last
}

// snapshotRow is the row of the timeline a snapshot taken at t belongs
// to: the newest timeline that started before it.
func snapshotRow(st *retention.Status, t time.Time) int {
	r := 0
	for i, ts := range st.Timelines {
		if first, _ := timelineSpan(ts); !first.After(t) {
			r = i
		}
	}
	return r
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func orDefault(s, d string) string {
	if strings.TrimSpace(s) == "" {
		return d
	}
	return s
}

var pageTemplate = template.Must(template.New("page").Funcs(template.FuncMap{
	"pct": func(f float64) string { return fmt.Sprintf("%.2f%%", f) },
	"add": func(a, b int) int { return a + b },
}).Parse(pageHTML))

// Watcher reads a cluster's status every interval (binarc stream, with
// --metrics-addr) and keeps the newest: the page at / is rendered from it,
// and it exports the restorable window's ends as metrics for dashboards
// and alerts. Reading the status lists the whole archive (and reads each
// complete file's index), so it is read on a schedule, never per request.
type Watcher struct {
	read  func(ctx context.Context) (*retention.Status, error)
	every time.Duration

	mu     sync.Mutex
	st     *retention.Status
	readAt time.Time

	windowStart, windowEnd, gaps, timelines *prometheus.Desc
}

// NewWatcher reads with read every interval once Run runs.
func NewWatcher(read func(ctx context.Context) (*retention.Status, error), every time.Duration) *Watcher {
	d := func(name, help string) *prometheus.Desc { return prometheus.NewDesc(name, help, nil, nil) }
	return &Watcher{read: read, every: every,
		windowStart: d("binarc_restorable_window_start_timestamp_seconds", "The oldest time a restore can reach (the start of the earliest restorable window), as of the last status read."),
		windowEnd:   d("binarc_restorable_window_end_timestamp_seconds", "The newest time a restore can reach (the end of the latest restorable window), as of the last status read."),
		gaps:        d("binarc_archive_gaps", "Binlog files of the archive with a byte range missing, as of the last status read."),
		timelines:   d("binarc_archive_timelines", "Timelines in the archive (one more at each failover or flip), as of the last status read."),
	}
}

// Run reads the status now and then every interval until ctx ends (every
// 10 s until a first read succeeds). A failed read keeps the previous
// status (the caller's read logs why).
func (w *Watcher) Run(ctx context.Context) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		st, err := w.read(rctx)
		cancel()
		if err == nil {
			w.mu.Lock()
			w.st, w.readAt = st, time.Now()
			w.mu.Unlock()
		}
		// Until a first status is read (a new archive has nothing yet),
		// try again soon.
		next := w.every
		if cur, _ := w.status(); cur == nil {
			next = min(next, 10*time.Second)
		}
		t.Reset(next)
	}
}

func (w *Watcher) status() (*retention.Status, time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.st, w.readAt
}

// ServeHTTP serves the page at / from the newest status; before the first
// read succeeds, a 503 with a short text.
func (w *Watcher) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/" {
		http.NotFound(rw, r)
		return
	}
	st, at := w.status()
	if st == nil {
		http.Error(rw, "the archive's status has not been read yet (the reason, if any, is in binarc's log)", http.StatusServiceUnavailable)
		return
	}
	rw.Header().Set("Content-Type", "text/html; charset=utf-8")
	rw.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	_ = Render(rw, Page{Status: st, Now: at})
}

// Describe is part of prometheus.Collector.
func (w *Watcher) Describe(ch chan<- *prometheus.Desc) {
	ch <- w.windowStart
	ch <- w.windowEnd
	ch <- w.gaps
	ch <- w.timelines
}

// Collect is part of prometheus.Collector: nothing before the first read.
func (w *Watcher) Collect(ch chan<- prometheus.Metric) {
	st, _ := w.status()
	if st == nil {
		return
	}
	var from, to time.Time
	for _, win := range st.Windows {
		if from.IsZero() || win.From.Before(from) {
			from = win.From
		}
		if win.To.After(to) {
			to = win.To
		}
	}
	if !from.IsZero() {
		ch <- prometheus.MustNewConstMetric(w.windowStart, prometheus.GaugeValue, float64(from.UnixNano())/1e9)
		ch <- prometheus.MustNewConstMetric(w.windowEnd, prometheus.GaugeValue, float64(to.UnixNano())/1e9)
	}
	gaps := 0
	for _, ts := range st.Timelines {
		for _, f := range ts.Files {
			if f.Gap != nil {
				gaps++
			}
		}
	}
	ch <- prometheus.MustNewConstMetric(w.gaps, prometheus.GaugeValue, float64(gaps))
	ch <- prometheus.MustNewConstMetric(w.timelines, prometheus.GaugeValue, float64(len(st.Timelines)))
}
