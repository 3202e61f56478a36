package metricsserver

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// TestReadyzShortStatus: /readyz shows a plain short reason as it is,
// and of any other (wrapping a backend's error, long, or with control
// bytes) only "not ready"; the full reason is in the log, once while it
// lasts.
func TestReadyzShortStatus(t *testing.T) {
	secret := errors.New("operation error S3: PutObject, https://s3.internal.example:9000/bucket-x, api error AccessDenied")
	for _, c := range []struct {
		err      error
		code     int
		body     string
		hideText string
	}{
		{nil, 200, "ready\n", ""},
		{errors.New("not connected to the primary"), 503, "not ready: not connected to the primary\n", ""},
		{fmt.Errorf("store: %w", secret), 503, "not ready (the reason is in binarc's log)\n", "s3.internal"},
		{errors.Join(secret), 503, "not ready (the reason is in binarc's log)\n", "s3.internal"},
		{errors.New(strings.Repeat("x", 200)), 503, "not ready (the reason is in binarc's log)\n", "xxx"},
		{errors.New("bad \x1b[31m"), 503, "not ready (the reason is in binarc's log)\n", "\x1b"},
	} {
		var logged bytes.Buffer
		r := &readiness{ready: func() error { return c.err }, log: zerolog.New(&logged), logEvery: time.Hour}
		for i := 0; i < 3; i++ {
			w := httptest.NewRecorder()
			r.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/readyz", nil))
			if w.Code != c.code || w.Body.String() != c.body {
				t.Errorf("%v: %d %q, want %d %q", c.err, w.Code, w.Body.String(), c.code, c.body)
			}
		}
		if c.err == nil {
			continue
		}
		if n := strings.Count(logged.String(), "not ready"); n != 1 {
			t.Errorf("%v: logged %d times in three probes, want once:\n%s", c.err, n, logged.String())
		}
		if c.hideText != "" && !strings.Contains(logged.String(), strings.ReplaceAll(c.hideText, "\x1b", `\u001b`)) {
			t.Errorf("%v: the log lacks the details:\n%s", c.err, logged.String())
		}
	}
}
