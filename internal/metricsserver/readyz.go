package metricsserver

import (
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// maxStatus is the longest reason /readyz shows.
const maxStatus = 80

// readiness is /readyz. Whoever can reach the metrics port reads it, so
// it answers "ready" or "not ready" with a short status only: the
// reason's text when it is a plain message of its own (short, one line,
// printable, wrapping no other error — "not connected to the primary"),
// never the text of an error it wraps, which can carry endpoints, bucket
// names or a server's answer. The full reason goes to the log, once when
// readiness is lost and then at most once per logEvery while it lasts
// (probes come every few seconds).
type readiness struct {
	ready    func() error
	log      zerolog.Logger
	logEvery time.Duration

	mu     sync.Mutex
	logged time.Time // when a reason was last logged; zero while ready
}

func (r *readiness) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	err := r.ready()
	r.note(err)
	if err == nil {
		fmt.Fprintln(w, "ready")
		return
	}
	w.WriteHeader(http.StatusServiceUnavailable)
	if s, ok := shortStatus(err); ok {
		fmt.Fprintln(w, "not ready:", s)
		return
	}
	fmt.Fprintln(w, "not ready (the reason is in binarc's log)")
}

// note logs err, rate-limited.
func (r *readiness) note(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err == nil {
		r.logged = time.Time{}
		return
	}
	if now := time.Now(); r.logged.IsZero() || now.Sub(r.logged) >= r.logEvery {
		r.logged = now
		r.log.Warn().Err(err).Msg("not ready (/readyz)")
	}
}

// shortStatus is err's text if it may be shown as it is.
func shortStatus(err error) (string, bool) {
	if errors.Unwrap(err) != nil {
		return "", false
	}
	if m, ok := err.(interface{ Unwrap() []error }); ok && len(m.Unwrap()) > 0 {
		return "", false
	}
	s := err.Error()
	if s == "" || len(s) > maxStatus {
		return "", false
	}
	for _, c := range []byte(s) {
		if c < 0x20 || c > 0x7e {
			return "", false
		}
	}
	return s, true
}
