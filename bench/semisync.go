package main

// The semi-sync phase: commit latency and throughput of concurrent
// writers on the primary (8 and 64), with binarc archiving
// asynchronously, then as the primary's semi-synchronous replica
// acknowledging after the store (--semi-sync, with the primary waiting
// AFTER_SYNC and AFTER_COMMIT) and after its local spool, and MariaDB's
// own replica as the semi-sync reference. binarc reaches the S3 server
// through testenv.Proxy, which adds a store latency per request (0, 10 ms
// like S3 Express One Zone, 50 ms like S3 Standard). Each mode runs for
// the same time, one after the other, against the same primary and S3
// server, so ratios between modes of one run are meaningful on a loaded
// machine; any commit the primary stopped waiting for is reported.

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/binarc/binarc/internal/procfs"
	"github.com/binarc/binarc/internal/testenv"
)

var (
	semiSyncOnly       = flag.Bool("semi-sync", false, "measure only commit latency and throughput with binarc as a semi-sync replica (store and local) against asynchronous, skipping the other phases")
	semiSyncLoad       = flag.Duration("semi-sync-load", 10*time.Second, "duration of each semi-sync mode's load (-quick: 5s)")
	semiSyncLatencies  = flag.String("semi-sync-latencies", "0,10ms,50ms", "store latencies added per request through a proxy, comma-separated")
	semiSyncWriters    = flag.String("semi-sync-writers", "8,64", "concurrent writers, comma-separated; each mode runs each")
	semiSyncArgs       = flag.String("semi-sync-args", "", "extra binarc flags for the semi-sync modes, e.g. --semi-sync-inflight 8")
	semiSyncSyncBinlog = flag.Int("semi-sync-sync-binlog", 1, "the primary's sync_binlog during the semi-sync phase: 1, a durable primary, as one run for zero loss is (issue 22's sysbench figures too); 0, the test servers' setting")
	semiSyncModes      = flag.String("semi-sync-modes", "async,store,after-commit,local,replica", "the modes to run, comma-separated: async, store (AFTER_SYNC), after-commit (store, AFTER_COMMIT), local, replica (MariaDB's own)")
)

const (
	putProbes              = 100
	targetSemiSyncExtraMs  = 1 // commit p50 <= async p50 + PUT p50 + this
	semiSyncPrimaryTimeout = 10 * time.Second
	// s3PutPricePer1000 is S3 Standard's list price per 1,000 PUT
	// requests (us-east-1, 2026): the cost column's basis.
	s3PutPricePer1000 = 0.005
)

// SemiSyncMode is one mode's load.
type SemiSyncMode struct {
	Name          string  `json:"name"`
	BinarcArgs    string  `json:"binarc_args"`
	WaitPoint     string  `json:"wait_point,omitempty"`
	LatencyMs     float64 `json:"store_latency_ms"`
	Writers       int     `json:"writers"`
	PutP50ms      float64 `json:"put_p50_ms"`
	Commits       int     `json:"commits"`
	CommitsPerSec float64 `json:"commits_per_second"`
	P50ms         float64 `json:"commit_p50_ms"`
	P99ms         float64 `json:"commit_p99_ms"`
	MeanMs        float64 `json:"commit_mean_ms"`
	// PrimaryTxWaitMs is the primary's own view: its mean wait per
	// commit that waited (Rpl_semi_sync_master_tx_wait_time / _tx_waits).
	PrimaryTxWaitMs float64 `json:"primary_tx_wait_ms"`
	MaxMs           float64 `json:"commit_max_ms"`
	// NotWaited counts commits the primary did not wait for
	// (Rpl_semi_sync_master_no_tx): it had fallen back to asynchronous.
	NotWaited int `json:"not_waited"`
	// Segments is how many segments binarc stored during the load: the
	// PUTs the mode cost.
	Segments int `json:"segments_stored"`
	// Slow counts commits over 100 ms (the stalls issue 12 saw).
	Slow int `json:"commits_over_100ms"`
	// AckMeanMs is binarc's mean acknowledgement latency during this
	// load (from the primary's request to the acknowledgement, its
	// metric), and UploadMeanMs its mean segment upload time (sealed to
	// stored): the PUT as it is under the load, not the idle probe.
	AckMeanMs    float64 `json:"binarc_ack_mean_ms"`
	UploadMeanMs float64 `json:"binarc_upload_mean_ms"`
	PeakRSSMB    float64 `json:"binarc_peak_rss_mib"`
}

// SemiSyncResults is the semi-sync measurement, written as JSON beside
// the other results and printed as its own table.
type SemiSyncResults struct {
	LoadSeconds float64        `json:"load_seconds"`
	SyncBinlog  int            `json:"primary_sync_binlog"`
	Modes       []SemiSyncMode `json:"modes"`
}

// semiSync is the bench phase: every latency, every mode, every writer
// count.
func (b *bench) semiSync() error {
	load := *semiSyncLoad
	if b.opts.quick && !flagSet("semi-sync-load") {
		load = 5 * time.Second
	}
	latencies, writers, err := semiSyncMatrix()
	if err != nil {
		return err
	}
	runs, err := selectedRuns()
	if err != nil {
		return err
	}
	if err := b.db.Exec(b.ctx, "CREATE DATABASE IF NOT EXISTS bench_ss",
		"CREATE TABLE IF NOT EXISTS bench_ss.commits (id BIGINT AUTO_INCREMENT PRIMARY KEY, writer INT, note VARCHAR(200)) ENGINE=InnoDB",
		fmt.Sprintf("SET GLOBAL rpl_semi_sync_master_timeout = %d", semiSyncPrimaryTimeout.Milliseconds()),
		fmt.Sprintf("SET GLOBAL sync_binlog = %d", *semiSyncSyncBinlog)); err != nil {
		return err
	}
	proxy, err := testenv.StartProxy(strings.TrimPrefix(b.s3.Endpoint, "http://"), 1)
	if err != nil {
		return err
	}
	defer proxy.Close()
	res := &SemiSyncResults{LoadSeconds: load.Seconds(), SyncBinlog: *semiSyncSyncBinlog}
	for _, lat := range latencies {
		proxy.SetLatency(lat, lat/10) // a tenth of it as jitter
		p50, p99, err := b.probePuts(proxy.URL())
		if err != nil {
			return err
		}
		logf("semi-sync: store latency %v: S3 PUT of 8 KiB through the proxy, %d in a row: p50 %.1f ms, p99 %.1f ms", lat, putProbes, p50, p99)
		for _, run := range runs {
			if run.replica && lat != latencies[0] {
				continue // the replica does not use the store
			}
			modes, err := b.semiSyncRun(run, proxy.URL(), writers, load)
			if err != nil {
				return fmt.Errorf("semi-sync %s at %v: %w", run.name, lat, err)
			}
			for _, m := range modes {
				m.LatencyMs, m.PutP50ms = ms(lat), p50
				logf("  %v %s, %d writers: %.0f commits/s, p50 %.1f ms, p99 %.1f ms, max %.0f ms, %d over 100 ms, %d not waited for, %d segments; the primary waited %.2f ms per commit",
					lat, m.Name, m.Writers, m.CommitsPerSec, m.P50ms, m.P99ms, m.MaxMs, m.Slow, m.NotWaited, m.Segments, m.PrimaryTxWaitMs)
				res.Modes = append(res.Modes, m)
			}
		}
	}
	if err := b.db.Exec(b.ctx, "SET GLOBAL rpl_semi_sync_master_enabled = OFF"); err != nil {
		return err
	}
	res.writeMarkdown(os.Stdout)
	return res.save(b.resultsPath("semisync"))
}

func (r *SemiSyncResults) save(out string) error {
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	return saveJSON(out, r)
}

// probePuts times small PUTs to the S3 server through the proxy at
// endpoint, one after the other: the store latency a semi-sync
// acknowledgement cannot beat.
func (b *bench) probePuts(endpoint string) (p50, p99 float64, err error) {
	c := s3.New(b.s3.Client().Options(), func(o *s3.Options) { o.BaseEndpoint = aws.String(endpoint) })
	body := make([]byte, 8<<10)
	var lat []time.Duration
	for i := range putProbes {
		t0 := time.Now()
		// Conditional, as binarc's segment PUTs are.
		_, err := c.PutObject(b.ctx, &s3.PutObjectInput{Bucket: aws.String(b.s3.Bucket), Key: aws.String(fmt.Sprintf("putprobe/%s-%04d", testenv.RandomHex(4), i)),
			Body: strings.NewReader(string(body)), IfNoneMatch: aws.String("*")})
		if err != nil {
			return 0, 0, fmt.Errorf("PUT probe: %w", err)
		}
		lat = append(lat, time.Since(t0))
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	return ms(percentile(lat, 50)), ms(percentile(lat, 99)), nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// semiSyncRun runs one mode at each writer count: binarc (or the
// reference replica) started once, the loads one after the other.
func (b *bench) semiSyncRun(run semiSyncRun, s3Endpoint string, writers []int, load time.Duration) ([]SemiSyncMode, error) {
	semi := run.args != "" || run.replica
	if err := b.db.Exec(b.ctx, "SET GLOBAL rpl_semi_sync_master_wait_point = "+run.waitPoint,
		"SET GLOBAL rpl_semi_sync_master_enabled = "+map[bool]string{true: "ON", false: "OFF"}[semi && !run.replica]); err != nil {
		return nil, err
	}
	if run.replica {
		stop, err := b.startReferenceReplica()
		if err != nil {
			return nil, err
		}
		defer stop()
		return b.loads(run, writers, load, nil)
	}
	// A fresh binlog file, so that --start-at current has nothing to
	// catch up (the primary's only file holds every earlier mode's load).
	if err := b.db.Exec(b.ctx, "FLUSH BINARY LOGS"); err != nil {
		return nil, err
	}
	args := strings.Fields(run.args)
	if strings.Contains(run.args, "local") {
		args = append(args, "--spool-dir", filepath.Join(b.tmp, "spool-"+testenv.RandomHex(4)))
	}
	if run.args != "" {
		args = append(args, strings.Fields(*semiSyncArgs)...)
	}
	clusterName := "bench-ss-" + testenv.RandomHex(4)
	logPath := filepath.Join(b.tmp, clusterName+".log")
	bin, err := startBinarcEnv(b.binarc, clusterName, append([]string{"--start-at", "current", "--metrics-addr", "127.0.0.1:0"}, args...), b.db, b.s3, b.replPass, logPath,
		[]string{"AWS_ENDPOINT_URL_S3=" + s3Endpoint})
	if err != nil {
		return nil, err
	}
	b.cl.add(bin.Kill)
	defer bin.Kill()
	if err := b.waitSemiSyncReady(bin, logPath, semi); err != nil {
		return nil, err
	}
	var atStart map[string]float64
	modes, err := b.loads(run, writers, load, func(m *SemiSyncMode, before bool) error {
		n, err := b.countSegments(clusterName)
		if err != nil {
			return err
		}
		metrics, err := scrapeMetrics(logPath)
		if err != nil {
			return err
		}
		if before {
			m.Segments, atStart = -n, metrics
			return nil
		}
		m.Segments += n
		m.AckMeanMs = meanSince(metrics, atStart, "binarc_semi_sync_ack_latency_seconds")
		m.UploadMeanMs = meanSince(metrics, atStart, "binarc_upload_latency_seconds")
		return nil
	})
	if err != nil {
		return nil, err
	}
	for i := range modes {
		if kb, err := procfs.StatusKB(bin.Pid(), "VmHWM"); err == nil {
			modes[i].PeakRSSMB = float64(kb) / 1024
		}
	}
	if err := bin.Stop(syscall.SIGTERM, time.Minute); err != nil {
		return nil, fmt.Errorf("%w; binarc's log ends:\n%s", err, testenv.TailFile(logPath, 10))
	}
	return modes, nil
}

// loads measures run at each writer count; around, if set, hears before
// and after each load (to count the segments stored meanwhile).
func (b *bench) loads(run semiSyncRun, writers []int, load time.Duration, around func(m *SemiSyncMode, before bool) error) ([]SemiSyncMode, error) {
	var modes []SemiSyncMode
	for _, w := range writers {
		m := SemiSyncMode{Name: run.name, BinarcArgs: run.args, WaitPoint: run.waitPoint, Writers: w}
		if around != nil {
			if err := around(&m, true); err != nil {
				return nil, err
			}
		}
		if err := b.measureLoad(&m, w, load); err != nil {
			return nil, err
		}
		if around != nil {
			if err := around(&m, false); err != nil {
				return nil, err
			}
		}
		modes = append(modes, m)
	}
	return modes, nil
}

// startReferenceReplica makes a MariaDB replica the primary's only
// semi-sync replica (binarc not running): MariaDB's own acknowledgement,
// sent once the event is in the replica's relay log.
func (b *bench) startReferenceReplica() (stop func(), err error) {
	r, err := testenv.LaunchReplica(b.ctx, filepath.Join(b.tmp, "semisync-replica"), b.db, testenv.ReplicaOptions{ServerID: 77})
	if err != nil {
		return nil, err
	}
	b.cl.add(func() { r.Close() })
	if err := r.WaitCaughtUp(b.ctx, b.db, 5*time.Minute); err != nil {
		r.Close()
		return nil, err
	}
	if err := r.Exec(b.ctx, "SET GLOBAL rpl_semi_sync_slave_enabled = ON", "STOP SLAVE IO_THREAD", "START SLAVE IO_THREAD"); err != nil {
		r.Close()
		return nil, err
	}
	if err := b.db.Exec(b.ctx, "SET GLOBAL rpl_semi_sync_master_enabled = ON"); err != nil {
		r.Close()
		return nil, err
	}
	if err := b.waitSemiSyncActive(func() error { return nil }); err != nil {
		r.Close()
		return nil, fmt.Errorf("the replica: %w", err)
	}
	return func() { r.Close() }, nil
}

// waitSemiSyncActive waits until the primary has one semi-sync replica
// and waits for it (Rpl_semi_sync_master_status ON), which it turns on at
// a commit once the replica has caught up: a warm-up commit is made
// meanwhile. alive says whether the replica is still there.
func (b *bench) waitSemiSyncActive(alive func() error) error {
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		if err := alive(); err != nil {
			return err
		}
		n, err := b.statusInt("Rpl_semi_sync_master_clients")
		if err != nil {
			return err
		}
		on, err := b.statusString("Rpl_semi_sync_master_status")
		if err != nil {
			return err
		}
		if n == 1 && on == "ON" {
			return nil
		}
		if n == 1 {
			if err := b.db.Exec(b.ctx, "INSERT INTO bench_ss.commits (writer, note) VALUES (-1, 'warm-up')"); err != nil {
				return err
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not the primary's active semi-sync replica within a minute (Rpl_semi_sync_master_clients %d, status %s)", n, on)
		}
	}
}

// waitSemiSyncReady waits until binarc streams and, in a semi-sync mode,
// the primary waits for it, as for the reference replica.
func (b *bench) waitSemiSyncReady(bin *testenv.Process, logPath string, semi bool) error {
	deadline := time.Now().Add(time.Minute)
	for countLogLines(logPath, "streaming from the primary") == 0 {
		if bin.Exited() || time.Now().After(deadline) {
			return fmt.Errorf("binarc did not start streaming within a minute; see %s", logPath)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !semi {
		return nil
	}
	err := b.waitSemiSyncActive(func() error {
		if bin.Exited() {
			return fmt.Errorf("binarc exited; see %s", logPath)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("binarc: %w", err)
	}
	return nil
}

// commitLoad runs the writers, each committing one-row inserts as fast as
// it can, for load, and returns every commit's latency.
func (b *bench) commitLoad(writers int, load time.Duration) ([]time.Duration, time.Duration, error) {
	ctx, cancel := context.WithTimeout(b.ctx, load)
	defer cancel()
	var mu sync.Mutex
	var all []time.Duration
	errc := make(chan error, writers)
	start := time.Now()
	for w := range writers {
		go func() {
			conn, err := b.db.Dial(b.ctx)
			if err != nil {
				errc <- err
				return
			}
			defer testenv.Quit(conn)
			var lat []time.Duration
			for ctx.Err() == nil {
				t0 := time.Now()
				r, err := conn.Execute(fmt.Sprintf("INSERT INTO bench_ss.commits (writer, note) VALUES (%d, REPEAT('x', 150))", w))
				if err != nil {
					errc <- err
					return
				}
				r.Close()
				lat = append(lat, time.Since(t0))
			}
			mu.Lock()
			all = append(all, lat...)
			mu.Unlock()
			errc <- nil
		}()
	}
	var firstErr error
	for range writers {
		if err := <-errc; err != nil && firstErr == nil {
			firstErr = err
		}
	}
	return all, time.Since(start), firstErr
}

// measureLoad runs the writers' load and fills the mode's commit figures
// and the primary's waits.
func (b *bench) measureLoad(mode *SemiSyncMode, writers int, load time.Duration) error {
	before, err := b.primaryCounters()
	if err != nil {
		return err
	}
	lat, elapsed, err := b.commitLoad(writers, load)
	if err != nil {
		return err
	}
	after, err := b.primaryCounters()
	if err != nil {
		return err
	}
	if waits := after.txWaits - before.txWaits; waits > 0 {
		mode.PrimaryTxWaitMs = float64(after.txWaitTime-before.txWaitTime) / float64(waits) / 1000
	}
	mode.Commits = len(lat)
	mode.CommitsPerSec = float64(len(lat)) / elapsed.Seconds()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	mode.setLatency(lat)
	mode.NotWaited = after.noTx - before.noTx
	return nil
}

// setLatency fills the latency figures from the commits' latencies,
// sorted.
func (m *SemiSyncMode) setLatency(sorted []time.Duration) {
	m.P50ms, m.P99ms = ms(percentile(sorted, 50)), ms(percentile(sorted, 99))
	if len(sorted) > 0 {
		var sum time.Duration
		for _, d := range sorted {
			sum += d
		}
		m.MeanMs, m.MaxMs = ms(sum/time.Duration(len(sorted))), ms(sorted[len(sorted)-1])
	}
	for _, d := range sorted {
		if d > 100*time.Millisecond {
			m.Slow++
		}
	}
}

// reference tells whether the mode is MariaDB's own replica, not binarc.
func (m SemiSyncMode) reference() bool { return strings.Contains(m.Name, "reference") }
