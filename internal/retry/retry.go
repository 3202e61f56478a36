// Package retry is binarc's one retry loop: capped exponential backoff, and
// an outage logged once when it begins and once when it ends, however many
// attempts and workers fail in between. Every long-running loop that waits
// out a primary or a store uses it (STYLE.md: retry policy lives in one
// place). It knows nothing of what it retries: callers say which errors are
// permanent.
package retry

import (
	"context"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// Backoff is a capped exponential wait. The zero value waits 250 ms first
// and at most 30 s.
type Backoff struct {
	Initial time.Duration
	Max     time.Duration
	cur     time.Duration
}

// Reset makes the next wait the initial one again (after progress).
func (b *Backoff) Reset() { b.cur = 0 }

// Wait sleeps for the current delay, then doubles it up to Max. It returns
// ctx's error if ctx ends first.
func (b *Backoff) Wait(ctx context.Context) error {
	initial, maxWait := b.Initial, b.Max
	if initial <= 0 {
		initial = 250 * time.Millisecond
	}
	if maxWait <= 0 {
		maxWait = 30 * time.Second
	}
	if b.cur <= 0 {
		b.cur = initial
	}
	t := time.NewTimer(b.cur)
	defer t.Stop()
	b.cur = min(b.cur*2, maxWait)
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Outage logs the first failure of an outage as a warning and its end as
// info, once each. It is safe for concurrent use, so workers retrying the
// same thing share one. Empty DownMsg and UpMsg are made from What.
type Outage struct {
	Log     zerolog.Logger
	What    string // "object store", "primary"
	DownMsg string // logged with the first failure
	UpMsg   string // logged at recovery; "-" logs nothing

	mu    sync.Mutex
	since time.Time
	count int
}

// Failed records a failed attempt; the first of an outage is logged, with
// fields added by the optional annotate.
func (o *Outage) Failed(err error, annotate ...func(*zerolog.Event) *zerolog.Event) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.count++
	if !o.since.IsZero() {
		o.Log.Debug().Err(err).Int("attempt", o.count).Msgf("%s: still failing", o.What)
		return
	}
	o.since = time.Now()
	ev := o.Log.Warn().Err(err)
	for _, a := range annotate {
		ev = a(ev)
	}
	msg := o.DownMsg
	if msg == "" {
		msg = o.What + " unavailable; retrying with backoff (logged once per outage)"
	}
	ev.Msg(msg)
}

// OK records a success; it ends an outage, if one was going on, and logs
// how long it lasted.
func (o *Outage) OK() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.since.IsZero() {
		return
	}
	if o.UpMsg != "-" {
		msg := o.UpMsg
		if msg == "" {
			msg = o.What + " is back"
		}
		o.Log.Info().Dur("outage", time.Since(o.since).Round(time.Millisecond)).Int("failed_attempts", o.count).Msg(msg)
	}
	o.since, o.count = time.Time{}, 0
}

// Down says whether an outage is going on.
func (o *Outage) Down() bool { return !o.Since().IsZero() }

// Since is when the outage going on began; zero when there is none.
func (o *Outage) Since() time.Time {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.since
}

// Do calls fn until it succeeds, fails with an error permanent says no
// retry can fix (returned at once), or ctx ends (ctx's error). Between
// attempts it waits with b; o logs the outage.
func Do[T any](ctx context.Context, b Backoff, o *Outage, permanent func(error) bool, fn func() (T, error)) (T, error) {
	for {
		v, err := fn()
		if err == nil {
			o.OK()
			return v, nil
		}
		if ctx.Err() != nil {
			return v, ctx.Err()
		}
		if permanent != nil && permanent(err) {
			return v, err
		}
		o.Failed(err)
		if werr := b.Wait(ctx); werr != nil {
			return v, werr
		}
	}
}
