package integration

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/binarc/binarc/integration/testenv"
	"github.com/binarc/binarc/snapshot"
)

// TestMetricsDuringStream scrapes a real binarc stream while the primary
// writes, the store goes down and comes back, and the primary stops and
// starts: the position and byte series follow the data, the loss window
// opens while data cannot be stored and closes once it is, and
// primary_connected and /readyz follow the primary.
func TestMetricsDuringStream(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testenv.MariaDBOptions{MaxBinlogSize: 256 << 10})
	ctx := context.Background()
	p := e.start(e.streamArgs("--metrics-addr", "127.0.0.1:0")...)
	s := newScraper(t, p)

	if code, body := s.get("/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz: %d %q", code, body)
	}
	s.waitFor("connected to the primary", func(m metrics) bool { return m.get("binarc_primary_connected") == 1 })
	s.waitReady(http.StatusOK, "ready")
	e.waitArchived(time.Minute)
	before := s.waitFor("durable position at the primary's", s.atPrimary(e))
	for name, want := range map[string]float64{"binarc_lease_held": 1, "binarc_timeline": 1} {
		if got := before.get(name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}

	// Data written is received, stored, and moves the durable position.
	if err := writeLoad(ctx, e.primary, loadOptions{From: 0, To: 120, FlushAt: 60}); err != nil {
		t.Fatal(err)
	}
	e.waitArchived(2 * time.Minute)
	after := s.waitFor("durable position at the primary's after the load", s.atPrimary(e))
	if !positionLess(before, after) {
		t.Errorf("durable position did not move: %s then %s", before.position(), after.position())
	}
	for _, name := range []string{"binarc_received_bytes_total", "binarc_received_events_total", "binarc_stored_bytes_total",
		"binarc_stored_events_total", "binarc_segments_uploaded_total", "binarc_upload_latency_seconds_count",
		"binarc_receive_to_durable_seconds_count"} {
		if after.get(name) <= before.get(name) {
			t.Errorf("%s did not grow with the load: %v then %v", name, before.get(name), after.get(name))
		}
	}
	if d, r := after.get("binarc_durable_event_timestamp_seconds"), after.get("binarc_received_event_timestamp_seconds"); d <= 0 || d > r {
		t.Errorf("durable event time %v, newest received %v: want 0 < durable <= received", d, r)
	}
	// Caught up and idle: heartbeats show nothing is missing.
	s.waitFor("loss window 0 when caught up and idle", func(m metrics) bool { return m.get("binarc_loss_window_seconds") == 0 })

	// The store is down: what arrives cannot be made durable, so the loss
	// window opens and grows, and failed uploads are counted.
	e.s3.Stop()
	if err := writeLoad(ctx, e.primary, loadOptions{From: 120, To: 140}); err != nil {
		t.Fatal(err)
	}
	open := s.waitFor("loss window open while the store is down", func(m metrics) bool { return m.get("binarc_loss_window_seconds") > 0 })
	s.waitFor("loss window growing while the store is down", func(m metrics) bool {
		return m.get("binarc_loss_window_seconds") > open.get("binarc_loss_window_seconds")
	})
	s.waitFor("upload retries and store errors counted", func(m metrics) bool {
		return m.get("binarc_upload_retries_total") > 0 && m.get("binarc_errors_total", `kind="store"`) > 0 && m.get("binarc_store_outage_seconds") > 0
	})
	e.s3.Start()
	e.waitArchived(time.Minute)
	s.waitFor("loss window closed once the store is back", func(m metrics) bool {
		return m.get("binarc_loss_window_seconds") == 0 && m.get("binarc_store_outage_seconds") == 0
	})
	stored := s.waitFor("durable position at the primary's after the outage", s.atPrimary(e))

	// The primary stops: disconnected, not ready, nothing left to lose.
	e.primary.Stop(t)
	down := s.waitFor("primary_connected 0", func(m metrics) bool { return m.get("binarc_primary_connected") == 0 })
	if down.get("binarc_errors_total", `kind="primary"`) < 1 {
		t.Errorf("binarc_errors_total{kind=\"primary\"} = %v after the primary stopped, want >= 1", down.get("binarc_errors_total", `kind="primary"`))
	}
	s.waitReady(http.StatusServiceUnavailable, "not connected to the primary")
	if code, _ := s.get("/healthz"); code != http.StatusOK {
		t.Errorf("/healthz %d while the primary is down; the process is alive", code)
	}
	s.waitFor("loss window 0 with the primary down and everything stored", func(m metrics) bool { return m.get("binarc_loss_window_seconds") == 0 })

	// Back: connected and ready again; the restart opened a new binlog
	// file, which the durable position reaches.
	e.primary.Start(t)
	s.waitFor("primary_connected 1 again", func(m metrics) bool { return m.get("binarc_primary_connected") == 1 })
	s.waitReady(http.StatusOK, "ready")
	if err := writeLoad(ctx, e.primary, loadOptions{From: 140, To: 160}); err != nil {
		t.Fatal(err)
	}
	e.waitArchived(time.Minute)
	final := s.waitFor("durable position at the primary's after its restart", s.atPrimary(e))
	if final.get("binarc_durable_file_sequence") <= stored.get("binarc_durable_file_sequence") {
		t.Errorf("durable file %s did not move past %s across the primary's restart", final.position(), stored.position())
	}
	p.stop(t)
}

// TestMetricsBeforeTheStore starts binarc stream while the S3 server is
// down: the endpoints answer at once, alive but not ready, and turn ready
// once the store is back. A malformed address is bad input.
func TestMetricsBeforeTheStore(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testenv.MariaDBOptions{})
	out, code := e.run(e.streamArgs("--metrics-addr", "9187")...)
	if code != 2 || !strings.Contains(out, "--metrics-addr") {
		t.Errorf("--metrics-addr 9187: exit %d, want 2 naming the flag:\n%s", code, out)
	}
	e.s3.Stop()
	p := e.start(e.streamArgs("--metrics-addr", "127.0.0.1:0")...)
	s := newScraper(t, p)
	p.waitLog(t, "object store unreachable", time.Minute)
	if code, body := s.get("/healthz"); code != http.StatusOK {
		t.Errorf("/healthz while waiting for the store: %d %q", code, body)
	}
	s.waitReady(http.StatusServiceUnavailable, "waiting for the object store")
	if m := s.scrape(); m.get("binarc_primary_connected") != 0 || len(m) == 0 {
		t.Errorf("before the store: want binarc_primary_connected 0, got\n%s", binarcSeries(m))
	}
	e.s3.Start()
	s.waitReady(http.StatusOK, "ready")
	e.waitArchived(time.Minute)
	p.stop(t)
}

// TestSnapshotMetrics checks binarc snapshot's series: at start they
// describe the newest snapshot already stored; then a failed run is
// counted and a successful one replaces the last success.
func TestSnapshotMetrics(t *testing.T) {
	t.Parallel()
	e := newSnapEnv(t)
	e.seed(0)
	if out, code := e.run(e.snapshotArgs(logUser, "--method", "logical")...); code != 0 {
		t.Fatalf("snapshot exited %d:\n%s", code, out)
	}
	stored := e.newest()

	// A schedule that does not fire during the test: the series come from
	// the store.
	p := e.start(e.snapshotArgs(logUser, "--method", "logical", "--schedule", "@yearly", "--metrics-addr", "127.0.0.1:0")...)
	s := newScraper(t, p)
	s.waitFor("the stored snapshot in the series", func(m metrics) bool {
		return m.get("binarc_snapshot_last_success_timestamp_seconds") == float64(stored.Finished.Unix()) &&
			m.get("binarc_snapshot_last_size_bytes") == float64(stored.StoredSize)
	})
	s.waitReady(http.StatusOK, "ready")
	p.stop(t)

	// The first run fails (the tool exits 3), the next succeeds.
	wrapper := mariabackupFailingOnce(t)
	p = e.startEnv([]string{"BINARC_MARIABACKUP=" + wrapper}, e.snapshotArgs(physUser, "--schedule", "@every 2s", "--metrics-addr", "127.0.0.1:0")...)
	s = newScraper(t, p)
	s.waitFor("the failed run counted", func(m metrics) bool { return m.get("binarc_snapshot_failures_total") == 1 })
	m := s.waitFor("a newer success", func(m metrics) bool {
		return m.get("binarc_snapshot_last_success_timestamp_seconds") > float64(stored.Finished.Unix())
	})
	// The schedule goes on: find the snapshot the series describe.
	var got *snapshot.Manifest
	for _, en := range e.snapshots() {
		if en.Complete && float64(en.Manifest.Finished.Unix()) == m.get("binarc_snapshot_last_success_timestamp_seconds") {
			got = en.Manifest
		}
	}
	if got == nil || m.get("binarc_snapshot_last_size_bytes") != float64(got.StoredSize) || m.get("binarc_snapshot_last_duration_seconds") <= 0 {
		t.Errorf("series %v describe no stored snapshot (found %+v)", binarcSeries(m), got)
	}
	p.stop(t)
}

// metrics is one scrape: series (name and labels, as exposed) to value.
type metrics map[string]float64

// get returns the value of the series called name whose labels contain
// every one of labels (`kind="store"`); 0 if none.
func (m metrics) get(name string, labels ...string) float64 {
	for series, v := range m {
		n, ls, _ := strings.Cut(series, "{")
		if n != name {
			continue
		}
		ok := true
		for _, l := range labels {
			ok = ok && strings.Contains(ls, l)
		}
		if ok {
			return v
		}
	}
	return 0
}

// label returns the value of label on the series called name.
func (m metrics) label(name, label string) string {
	for series := range m {
		if n, ls, _ := strings.Cut(series, "{"); n == name {
			if _, v, ok := strings.Cut(ls, label+`="`); ok {
				v, _, _ = strings.Cut(v, `"`)
				return v
			}
		}
	}
	return ""
}

func (m metrics) position() string {
	return fmt.Sprintf("%s:%v", m.label("binarc_durable_position_info", "file"), m.get("binarc_durable_offset_bytes"))
}

func positionLess(a, b metrics) bool {
	as, bs := a.get("binarc_durable_file_sequence"), b.get("binarc_durable_file_sequence")
	return as < bs || as == bs && a.get("binarc_durable_offset_bytes") < b.get("binarc_durable_offset_bytes")
}

// scraper reads a binarc's HTTP endpoints.
type scraper struct {
	t    *testing.T
	p    *proc
	base string
	c    *http.Client
}

// newScraper finds the address binarc logged (it was started on port 0).
func newScraper(t *testing.T, p *proc) *scraper {
	t.Helper()
	p.waitLog(t, "serving metrics", time.Minute)
	addr, _ := logLines(p.out.String(), "serving metrics")[0]["addr"].(string)
	if addr == "" {
		t.Fatalf("the metrics log line has no addr:\n%s", p.out.String())
	}
	return &scraper{t: t, p: p, base: "http://" + addr, c: &http.Client{Timeout: 10 * time.Second}}
}

func (s *scraper) get(path string) (int, string) {
	s.t.Helper()
	resp, err := s.c.Get(s.base + path)
	if err != nil {
		s.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatalf("GET %s: %v", path, err)
	}
	return resp.StatusCode, string(b)
}

func (s *scraper) scrape() metrics {
	s.t.Helper()
	code, body := s.get("/metrics")
	if code != http.StatusOK {
		s.t.Fatalf("/metrics: %d\n%s", code, body)
	}
	m := metrics{}
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if i < 0 || err != nil {
			s.t.Fatalf("/metrics: unreadable line %q", line)
		}
		m[line[:i]] = v
	}
	return m
}

// waitFor scrapes until ok holds, and returns that scrape.
func (s *scraper) waitFor(what string, ok func(metrics) bool) metrics {
	s.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		m := s.scrape()
		if ok(m) {
			return m
		}
		select {
		case <-s.p.done:
			s.t.Fatalf("binarc exited while waiting for %s:\n%s", what, tail(s.p.out.String(), 4000))
		default:
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("no %s within a minute; last scrape:\n%s", what, binarcSeries(m))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitReady waits until /readyz answers code with a body containing want.
func (s *scraper) waitReady(code int, want string) {
	s.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		got, body := s.get("/readyz")
		if got == code && strings.Contains(body, want) {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("/readyz: %d %q, want %d %q", got, body, code, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// atPrimary holds when the durable position is the primary's current one.
func (s *scraper) atPrimary(e *env) func(metrics) bool {
	return func(m metrics) bool {
		rows := e.primary.Query(s.t, "SHOW MASTER STATUS")
		return len(rows) == 1 && m.label("binarc_durable_position_info", "file") == rows[0][0] &&
			strconv.FormatFloat(m.get("binarc_durable_offset_bytes"), 'f', -1, 64) == rows[0][1]
	}
}

func binarcSeries(m metrics) string {
	var b strings.Builder
	for k, v := range m {
		if strings.HasPrefix(k, "binarc_") && !strings.Contains(k, "_bucket") {
			fmt.Fprintf(&b, "%s %v\n", k, v)
		}
	}
	return b.String()
}
