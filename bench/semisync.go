package main

// The semi-sync phase: commit latency and throughput of 8 concurrent
// writers on the primary, with binarc archiving asynchronously, then as the
// primary's semi-synchronous replica acknowledging after the store
// (--semi-sync) and after its local spool (--semi-sync-durability local).
// Each mode runs for the same time, one after the other, against the same
// primary and S3 server; the primary is told to wait AFTER_SYNC with a 10 s
// timeout, and any commit it stopped waiting for is reported.

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
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
	semiSyncOnly = flag.Bool("semi-sync", false, "measure only commit latency and throughput with binarc as a semi-sync replica (store and local) against asynchronous, skipping the other phases")
	semiSyncLoad = flag.Duration("semi-sync-load", 10*time.Second, "duration of each semi-sync mode's load (-quick: 5s)")
)

const (
	semiSyncWriters        = 8
	putProbes              = 200
	targetSemiSyncExtraMs  = 5
	targetSemiSyncThruput  = 0.8
	semiSyncPrimaryTimeout = 10 * time.Second
)

// SemiSyncMode is one mode's load.
type SemiSyncMode struct {
	Name          string  `json:"name"`
	BinarcArgs    string  `json:"binarc_args"`
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
	// Segments is how many segments binarc stored: the PUTs the mode cost.
	Segments int `json:"segments_stored"`
	// AckMeanMs is binarc's mean acknowledgement latency (from the
	// primary's request to the acknowledgement, its metric), and
	// UploadMeanMs its mean segment upload time (sealed to stored).
	AckMeanMs    float64 `json:"binarc_ack_mean_ms"`
	UploadMeanMs float64 `json:"binarc_upload_mean_ms"`
	PeakRSSMB    float64 `json:"binarc_peak_rss_mib"`
}

// SemiSyncResults is the semi-sync measurement, written as JSON beside
// the other results and printed as its own table.
type SemiSyncResults struct {
	Writers     int            `json:"writers"`
	LoadSeconds float64        `json:"load_seconds"`
	PutP50ms    float64        `json:"put_p50_ms"`
	PutP99ms    float64        `json:"put_p99_ms"`
	Modes       []SemiSyncMode `json:"modes"`
}

// semiSync is the bench phase.
func (b *bench) semiSync() error {
	load := *semiSyncLoad
	if b.opts.quick && !flagSet("semi-sync-load") {
		load = 5 * time.Second
	}
	res := &SemiSyncResults{Writers: semiSyncWriters, LoadSeconds: load.Seconds()}
	if err := b.db.Exec(b.ctx, "CREATE DATABASE IF NOT EXISTS bench_ss",
		"CREATE TABLE IF NOT EXISTS bench_ss.commits (id BIGINT AUTO_INCREMENT PRIMARY KEY, writer INT, note VARCHAR(200)) ENGINE=InnoDB",
		"SET GLOBAL rpl_semi_sync_master_wait_point = AFTER_SYNC",
		fmt.Sprintf("SET GLOBAL rpl_semi_sync_master_timeout = %d", semiSyncPrimaryTimeout.Milliseconds())); err != nil {
		return err
	}
	var err error
	if res.PutP50ms, res.PutP99ms, err = b.probePuts(); err != nil {
		return err
	}
	logf("semi-sync: S3 PUT of 8 KiB, %d in a row: p50 %.1f ms, p99 %.1f ms", putProbes, res.PutP50ms, res.PutP99ms)
	spool := filepath.Join(b.tmp, "spool")
	for _, m := range []struct{ name, args string }{
		{"asynchronous", ""},
		{"semi-sync, store", "--semi-sync"},
		{"semi-sync, local", "--semi-sync --semi-sync-durability local --spool-dir " + spool},
	} {
		mode, err := b.semiSyncMode(m.name, strings.Fields(m.args), load)
		if err != nil {
			return fmt.Errorf("semi-sync %s: %w", m.name, err)
		}
		logf("  %s: %.0f commits/s, p50 %.1f ms, p99 %.1f ms, mean %.2f ms, max %.0f ms, %d not waited for, %d segments; the primary waited %.2f ms per commit", mode.Name, mode.CommitsPerSec, mode.P50ms, mode.P99ms, mode.MeanMs, mode.MaxMs, mode.NotWaited, mode.Segments, mode.PrimaryTxWaitMs)
		res.Modes = append(res.Modes, mode)
	}
	// The reference: MariaDB's own replica as the only semi-sync replica,
	// acknowledging on receipt (no store, no upload): what semi-sync costs
	// on this machine whoever acknowledges.
	mode, err := b.semiSyncReplicaMode(load)
	if err != nil {
		return fmt.Errorf("semi-sync reference replica: %w", err)
	}
	logf("  %s: %.0f commits/s, p50 %.1f ms, p99 %.1f ms, mean %.2f ms, max %.0f ms, %d not waited for; the primary waited %.2f ms per commit", mode.Name, mode.CommitsPerSec, mode.P50ms, mode.P99ms, mode.MeanMs, mode.MaxMs, mode.NotWaited, mode.PrimaryTxWaitMs)
	res.Modes = append(res.Modes, mode)
	if err := b.db.Exec(b.ctx, "SET GLOBAL rpl_semi_sync_master_enabled = OFF"); err != nil {
		return err
	}
	res.writeMarkdown(os.Stdout)
	out := strings.TrimSuffix(b.opts.out, ".json") + "-semisync.json"
	data, _ := json.MarshalIndent(res, "", "  ")
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(out, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", out, err)
	}
	logf("wrote %s", out)
	return nil
}

// probePuts times small PUTs to the S3 server, one after the other: the
// store latency a semi-sync acknowledgement cannot beat.
func (b *bench) probePuts() (p50, p99 float64, err error) {
	c := b.s3.Client()
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

// semiSyncMode runs binarc with args on a cluster of its own, from the
// primary's current file, and the writers' load against it.
func (b *bench) semiSyncMode(name string, args []string, load time.Duration) (SemiSyncMode, error) {
	mode := SemiSyncMode{Name: name, BinarcArgs: strings.Join(args, " ")}
	semi := len(args) > 0
	if err := b.db.Exec(b.ctx, "SET GLOBAL rpl_semi_sync_master_enabled = "+map[bool]string{true: "ON", false: "OFF"}[semi]); err != nil {
		return mode, err
	}
	clusterName := "bench-ss-" + testenv.RandomHex(4)
	logPath := filepath.Join(b.tmp, clusterName+".log")
	bin, err := startBinarc(b.binarc, clusterName, append([]string{"--start-at", "current", "--metrics-addr", "127.0.0.1:0"}, args...), b.db, b.s3, b.replPass, logPath)
	if err != nil {
		return mode, err
	}
	b.cl.add(bin.Kill)
	defer bin.Kill()
	if err := b.waitSemiSyncReady(bin, logPath, semi); err != nil {
		return mode, err
	}
	if err := b.measureLoad(&mode, load); err != nil {
		return mode, err
	}
	if kb, err := procfs.StatusKB(bin.Pid(), "VmHWM"); err == nil {
		mode.PeakRSSMB = float64(kb) / 1024
	}
	if m, err := scrapeMetrics(logPath); err == nil {
		mode.AckMeanMs = mean(m, "binarc_semi_sync_ack_latency_seconds")
		mode.UploadMeanMs = mean(m, "binarc_upload_latency_seconds")
	} else {
		logf("  metrics of %s: %v", name, err)
	}
	if err := bin.Stop(syscall.SIGTERM, time.Minute); err != nil {
		return mode, fmt.Errorf("%w; binarc's log ends:\n%s", err, testenv.TailFile(logPath, 10))
	}
	mode.Segments, err = b.countSegments(clusterName)
	return mode, err
}

// semiSyncReplicaMode runs the writers' load with a MariaDB replica as the
// primary's only semi-sync replica (binarc not running): MariaDB's own
// acknowledgement, sent once the event is in the replica's relay log.
func (b *bench) semiSyncReplicaMode(load time.Duration) (SemiSyncMode, error) {
	mode := SemiSyncMode{Name: "semi-sync, a MariaDB replica (reference, no binarc)"}
	r, err := testenv.LaunchReplica(b.ctx, filepath.Join(b.tmp, "semisync-replica"), b.db, testenv.ReplicaOptions{ServerID: 77})
	if err != nil {
		return mode, err
	}
	b.cl.add(func() { r.Close() })
	defer r.Close()
	if err := r.WaitCaughtUp(b.ctx, b.db, 5*time.Minute); err != nil {
		return mode, err
	}
	if err := r.Exec(b.ctx, "SET GLOBAL rpl_semi_sync_slave_enabled = ON", "STOP SLAVE IO_THREAD", "START SLAVE IO_THREAD"); err != nil {
		return mode, err
	}
	if err := b.db.Exec(b.ctx, "SET GLOBAL rpl_semi_sync_master_enabled = ON"); err != nil {
		return mode, err
	}
	if err := b.waitSemiSyncActive(func() error { return nil }); err != nil {
		return mode, fmt.Errorf("the replica: %w", err)
	}
	return mode, b.measureLoad(&mode, load)
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

func (b *bench) statusInt(name string) (int, error) {
	v, err := b.statusString(name)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(v)
}

func (b *bench) statusString(name string) (string, error) {
	conn, err := b.db.Dial(b.ctx)
	if err != nil {
		return "", err
	}
	defer testenv.Quit(conn)
	r, err := conn.Execute("SHOW GLOBAL STATUS LIKE '" + name + "'")
	if err != nil {
		return "", err
	}
	defer r.Close()
	v, err := r.GetString(0, 1)
	if err != nil {
		return "", fmt.Errorf("status %s: %w", name, err)
	}
	return strings.Clone(v), nil
}

// commitLoad runs the writers, each committing one-row inserts as fast as
// it can, for load, and returns every commit's latency.
func (b *bench) commitLoad(load time.Duration) ([]time.Duration, time.Duration, error) {
	ctx, cancel := context.WithTimeout(b.ctx, load)
	defer cancel()
	var mu sync.Mutex
	var all []time.Duration
	errc := make(chan error, semiSyncWriters)
	start := time.Now()
	for w := range semiSyncWriters {
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
	for range semiSyncWriters {
		if err := <-errc; err != nil && firstErr == nil {
			firstErr = err
		}
	}
	return all, time.Since(start), firstErr
}

// measureLoad runs the writers' load and fills the mode's commit figures
// and the primary's waits.
func (b *bench) measureLoad(mode *SemiSyncMode, load time.Duration) error {
	before, err := b.statusInt("Rpl_semi_sync_master_no_tx")
	if err != nil {
		return err
	}
	t0, w0, err := b.primaryWaits()
	if err != nil {
		return err
	}
	lat, elapsed, err := b.commitLoad(load)
	if err != nil {
		return err
	}
	after, err := b.statusInt("Rpl_semi_sync_master_no_tx")
	if err != nil {
		return err
	}
	t1, w1, err := b.primaryWaits()
	if err != nil {
		return err
	}
	if w1 > w0 {
		mode.PrimaryTxWaitMs = float64(t1-t0) / float64(w1-w0) / 1000
	}
	mode.Commits = len(lat)
	mode.CommitsPerSec = float64(len(lat)) / elapsed.Seconds()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	mode.setLatency(lat)
	mode.NotWaited = after - before
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
}

// reference tells whether the mode is MariaDB's own replica, not binarc.
func (m SemiSyncMode) reference() bool { return strings.Contains(m.Name, "reference") }

func (r *SemiSyncResults) writeMarkdown(w io.Writer) {
	fmt.Fprintf(w, "\nSemi-sync: %d writers committing one-row inserts as fast as they can, %.0f s per mode; S3 PUT (8 KiB) p50 %.1f ms, p99 %.1f ms.\n\n",
		r.Writers, r.LoadSeconds, r.PutP50ms, r.PutP99ms)
	fmt.Fprintln(w, "| mode | commits/s | commit p50 | commit p99 | mean / max | primary waited per commit | target p99 | throughput vs async | target | segments stored | not waited for | binarc ack / upload mean | binarc peak RSS |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	var async float64
	for i, m := range r.Modes {
		if i == 0 {
			async = m.CommitsPerSec
			fmt.Fprintf(w, "| %s | %.0f | %.1f ms | %.1f ms | %.1f / %.0f ms | – | | | | %d | | – / %.1f ms | %.1f MiB |\n", m.Name, m.CommitsPerSec, m.P50ms, m.P99ms, m.MeanMs, m.MaxMs, m.Segments, m.UploadMeanMs, m.PeakRSSMB)
			continue
		}
		ratio := m.CommitsPerSec / async
		limit := r.PutP99ms + targetSemiSyncExtraMs
		if m.reference() {
			fmt.Fprintf(w, "| %s | %.0f | %.1f ms | %.1f ms | %.1f / %.0f ms | %.2f ms | | %.2f | | – | %d | – | – |\n", m.Name, m.CommitsPerSec, m.P50ms, m.P99ms, m.MeanMs, m.MaxMs, m.PrimaryTxWaitMs, ratio, m.NotWaited)
			continue
		}
		fmt.Fprintf(w, "| %s | %.0f | %.1f ms | %.1f ms | %.1f / %.0f ms | %.2f ms | <= %.1f ms: %s | %.2f | >= %.1f: %s | %d | %d | %.1f / %.1f ms | %.1f MiB |\n", m.Name, m.CommitsPerSec, m.P50ms, m.P99ms, m.MeanMs, m.MaxMs, m.PrimaryTxWaitMs,
			limit, pass(m.P99ms <= limit), ratio, targetSemiSyncThruput, pass(ratio >= targetSemiSyncThruput), m.Segments, m.NotWaited, m.AckMeanMs, m.UploadMeanMs, m.PeakRSSMB)
	}
	for _, ref := range r.Modes {
		if !ref.reference() || ref.CommitsPerSec == 0 {
			continue
		}
		fmt.Fprintln(w)
		for _, m := range r.Modes[1:] {
			if !m.reference() {
				fmt.Fprintf(w, "- %s: %.2f× the commits/s of MariaDB's own semi-sync replica\n", m.Name, m.CommitsPerSec/ref.CommitsPerSec)
			}
		}
	}
}
