// Package progress shows how far a long job has got: a bar that redraws
// itself on a terminal, periodic log lines otherwise.
package progress

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// State is how far the job has got. A zero total is unknown.
type State struct {
	Bytes, TotalBytes uint64
	Items, TotalItems uint64
}

// Reporter shows States as they come.
type Reporter struct {
	// What names the job ("replay") and Items its units ("transactions").
	What, Items string
	// Terminal, when set, receives a redrawn bar; otherwise Log gets a
	// line every Every.
	Terminal io.Writer
	Log      zerolog.Logger
	Every    time.Duration

	mu      sync.Mutex
	started time.Time
	last    time.Time
	done    bool
}

// Update shows s: at most 4 times a second on a terminal, every Every in
// the log, and always once when the job is complete.
func (r *Reporter) Update(s State) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	if r.started.IsZero() {
		r.started = now
	}
	complete := s.TotalBytes > 0 && s.Bytes >= s.TotalBytes
	if r.done || (!complete && now.Sub(r.last) < r.interval()) {
		return
	}
	r.last, r.done = now, complete
	rate, eta := r.rate(s, now)
	if r.Terminal != nil {
		fmt.Fprintf(r.Terminal, "\r%s", Line(r.What, r.Items, s, rate, eta))
		if complete {
			fmt.Fprintln(r.Terminal)
		}
		return
	}
	ev := r.Log.Info().Uint64("bytes", s.Bytes).Uint64("total_bytes", s.TotalBytes).Uint64(r.Items, s.Items).
		Float64("mib_per_s", rate/(1<<20))
	if s.TotalItems > 0 {
		ev = ev.Uint64("total_"+r.Items, s.TotalItems)
	}
	if eta >= 0 {
		ev = ev.Dur("eta", eta)
	}
	ev.Msg(r.What + " progress")
}

func (r *Reporter) interval() time.Duration {
	if r.Terminal != nil {
		return 250 * time.Millisecond
	}
	if r.Every > 0 {
		return r.Every
	}
	return 10 * time.Second
}

// rate is bytes per second since the start, and the time left at it (-1
// when unknown).
func (r *Reporter) rate(s State, now time.Time) (float64, time.Duration) {
	el := now.Sub(r.started).Seconds()
	if el <= 0 || s.Bytes == 0 {
		return 0, -1
	}
	rate := float64(s.Bytes) / el
	if s.TotalBytes == 0 {
		return rate, -1
	}
	return rate, time.Duration(float64(s.TotalBytes-min(s.Bytes, s.TotalBytes)) / rate * float64(time.Second)).Round(time.Second)
}

// Line renders one state: a bar when the total is known, the bytes and
// items done of their totals, the rate and the time left.
func Line(what, items string, s State, rate float64, eta time.Duration) string {
	var b strings.Builder
	b.WriteString(what + " ")
	if s.TotalBytes > 0 {
		const width = 24
		frac := min(float64(s.Bytes)/float64(s.TotalBytes), 1)
		n := int(frac * width)
		fmt.Fprintf(&b, "[%s%s] %3.0f%% ", strings.Repeat("#", n), strings.Repeat(".", width-n), frac*100)
	}
	fmt.Fprintf(&b, "%s", mib(s.Bytes))
	if s.TotalBytes > 0 {
		fmt.Fprintf(&b, "/%s", mib(s.TotalBytes))
	}
	fmt.Fprintf(&b, ", %d", s.Items)
	if s.TotalItems > 0 {
		fmt.Fprintf(&b, "/%d", s.TotalItems)
	}
	fmt.Fprintf(&b, " %s, %.1f MiB/s", items, rate/(1<<20))
	if eta >= 0 {
		fmt.Fprintf(&b, ", %s left", eta)
	}
	return b.String() + "   "
}

func mib(n uint64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
