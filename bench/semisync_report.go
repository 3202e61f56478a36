package main

import (
	"fmt"
	"io"
	"strings"
)

// onePutCeiling is the most commits a second that writers committing
// one at a time can reach when each commit waits for a store PUT that can
// only start once the commit is in the binlog (Little's law: writers ÷
// the PUT's p50, the idle probe's, so a little generous); 0 for the
// modes that do not wait on the store.
func onePutCeiling(m SemiSyncMode) float64 {
	if m.Name == "asynchronous" || m.reference() || m.PutP50ms <= 0 {
		return 0
	}
	return float64(m.Writers) / (m.PutP50ms / 1000)
}

// asyncOf finds the asynchronous mode of m's latency and writer count.
func (r *SemiSyncResults) asyncOf(m SemiSyncMode) (SemiSyncMode, bool) {
	for _, a := range r.Modes {
		if a.Name == "asynchronous" && a.Writers == m.Writers && (a.LatencyMs == m.LatencyMs || m.reference()) {
			return a, true
		}
	}
	return SemiSyncMode{}, false
}

// putsPerSecond is what the mode cost in segment PUTs during its load.
func (r *SemiSyncResults) putsPerSecond(m SemiSyncMode) float64 {
	if r.LoadSeconds == 0 {
		return 0
	}
	return float64(m.Segments) / r.LoadSeconds
}

func (r *SemiSyncResults) writeMarkdown(w io.Writer) {
	fmt.Fprintf(w, "\nSemi-sync: writers committing one-row inserts as fast as they can, %.0f s per mode and writer count, the primary at sync_binlog=%d and innodb_flush_log_at_trx_commit=1; store latency added per request by testenv.Proxy (jitter a tenth of it); PUT price $%.3f per 1,000 (S3 Standard list).\n\n", r.LoadSeconds, r.SyncBinlog, s3PutPricePer1000)
	fmt.Fprintln(w, "| store latency (PUT p50) | writers | mode | commits/s | vs async | one-PUT ceiling vs async | commit p50 | target p50 | p99 | max | commits > 100 ms | primary waited per commit | binarc PUT / ack, mean under the load | PUTs/s | PUTs/day | $/day | binarc peak RSS |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, m := range r.Modes {
		ratio, ceiling, target := "", "", ""
		if a, ok := r.asyncOf(m); ok && m.Name != "asynchronous" && a.CommitsPerSec > 0 {
			ratio = fmt.Sprintf("%.2f", m.CommitsPerSec/a.CommitsPerSec)
			if !m.reference() {
				limit := a.P50ms + m.PutP50ms + targetSemiSyncExtraMs
				target = fmt.Sprintf("<= %.1f ms: %s", limit, pass(m.P50ms <= limit))
			}
			if c := onePutCeiling(m); c > 0 && !strings.Contains(m.Name, "local") {
				ceiling = fmt.Sprintf("%.2f", c/a.CommitsPerSec)
			}
		}
		binarc := "–"
		if m.UploadMeanMs > 0 || m.AckMeanMs > 0 {
			binarc = fmt.Sprintf("%.1f / %.1f ms", m.UploadMeanMs, m.AckMeanMs)
		}
		puts, perDay, cost := "–", "–", "–"
		if !m.reference() {
			ps := r.putsPerSecond(m)
			puts = fmt.Sprintf("%.0f", ps)
			perDay = fmt.Sprintf("%.1f M", ps*86400/1e6)
			cost = fmt.Sprintf("%.2f", ps*86400/1000*s3PutPricePer1000)
		}
		waited, rss := "–", "–"
		if m.PrimaryTxWaitMs > 0 {
			waited = fmt.Sprintf("%.2f ms", m.PrimaryTxWaitMs)
		}
		if m.PeakRSSMB > 0 {
			rss = fmt.Sprintf("%.0f MiB", m.PeakRSSMB)
		}
		fmt.Fprintf(w, "| %.0f ms (%.1f ms) | %d | %s | %.0f | %s | %s | %.1f ms | %s | %.1f ms | %.0f ms | %d | %s | %s | %s | %s | %s | %s |\n",
			m.LatencyMs, m.PutP50ms, m.Writers, m.Name, m.CommitsPerSec, ratio, ceiling, m.P50ms, target, m.P99ms, m.MaxMs, m.Slow, waited, binarc, puts, perDay, cost, rss)
	}
}
