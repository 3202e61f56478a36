package main

import (
	"fmt"
	"io"
)

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
	fmt.Fprintf(w, "\nSemi-sync: writers committing one-row inserts as fast as they can, %.0f s per mode and writer count; store latency added per request by testenv.Proxy (jitter a tenth of it); PUT price $%.3f per 1,000 (S3 Standard list).\n\n", r.LoadSeconds, s3PutPricePer1000)
	fmt.Fprintln(w, "| store latency (PUT p50) | writers | mode | commits/s | vs async | commit p50 | target p50 | p99 | max | commits > 100 ms | primary waited per commit | PUTs/s | PUTs/day | $/day | binarc peak RSS |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, m := range r.Modes {
		ratio, target := "", ""
		if a, ok := r.asyncOf(m); ok && m.Name != "asynchronous" && a.CommitsPerSec > 0 {
			ratio = fmt.Sprintf("%.2f", m.CommitsPerSec/a.CommitsPerSec)
			if !m.reference() {
				limit := a.P50ms + m.PutP50ms + targetSemiSyncExtraMs
				target = fmt.Sprintf("<= %.1f ms: %s", limit, pass(m.P50ms <= limit))
			}
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
		fmt.Fprintf(w, "| %.0f ms (%.1f ms) | %d | %s | %.0f | %s | %.1f ms | %s | %.1f ms | %.0f ms | %d | %s | %s | %s | %s | %s |\n",
			m.LatencyMs, m.PutP50ms, m.Writers, m.Name, m.CommitsPerSec, ratio, m.P50ms, target, m.P99ms, m.MaxMs, m.Slow, waited, puts, perDay, cost, rss)
	}
}
