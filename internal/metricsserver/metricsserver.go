// Package metricsserver serves a long-running command's Prometheus
// metrics, /healthz and /readyz over HTTP. It knows nothing of what is
// measured: the collectors live with what they measure (stream.Metrics,
// snapshot.Metrics).
package metricsserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"
)

// ErrBadAddr is matched by Serve's error for an address that is not
// HOST:PORT (a usage error).
var ErrBadAddr = errors.New("bad metrics address")

// Serve registers cs under a cluster label and serves /metrics, /healthz
// (200 while the process runs) and /readyz (200 when ready returns nil,
// else 503 and a short status: see readiness) until stop is called. With
// no address it does nothing.
func Serve(addr string, log zerolog.Logger, cluster string, ready func() error, cs ...prometheus.Collector) (stop func(), err error) {
	return ServeWithPage(addr, log, cluster, ready, nil, cs...)
}

// ServeWithPage is Serve with page, when not nil, at / (binarc stream's
// status page).
func ServeWithPage(addr string, log zerolog.Logger, cluster string, ready func() error, page http.Handler, cs ...prometheus.Collector) (stop func(), err error) {
	if addr == "" {
		return func() {}, nil
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return nil, fmt.Errorf("%w: --metrics-addr %q: %v (use HOST:PORT or :PORT)", ErrBadAddr, addr, err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	prometheus.WrapRegistererWith(prometheus.Labels{"cluster": cluster}, reg).MustRegister(cs...)

	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.Handle("/readyz", &readiness{ready: ready, log: log, logEvery: 30 * time.Second})
	if page != nil {
		mux.Handle("/", page)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics-addr %s: %w", addr, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			log.Error().Err(err).Msg("metrics server stopped; the archive is not affected")
		}
	}()
	log.Info().Str("addr", ln.Addr().String()).Msg("serving metrics on /metrics, /healthz and /readyz")
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
	}, nil
}
