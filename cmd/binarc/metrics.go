package main

import (
	"errors"
	"net/http"

	"github.com/binarc/binarc/internal/metricsserver"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// metricsFlags turn on the HTTP endpoint of a long-running command.
type metricsFlags struct {
	MetricsAddr string `env:"BINARC_METRICS_ADDR" placeholder:"HOST:PORT" help:"Serve Prometheus metrics on /metrics, and /healthz and /readyz (and, for stream, the status page at /), at this address (e.g. :9187 or 127.0.0.1:9187; port 0 picks one and logs it). Off when empty."`
}

// serve serves cs on --metrics-addr, if set, until stop is called.
func (f metricsFlags) serve(log zerolog.Logger, cluster string, ready func() error, cs ...prometheus.Collector) (stop func(), err error) {
	return f.serveWithPage(log, cluster, ready, nil, cs...)
}

// serveWithPage is serve with page, when not nil, at /.
func (f metricsFlags) serveWithPage(log zerolog.Logger, cluster string, ready func() error, page http.Handler, cs ...prometheus.Collector) (stop func(), err error) {
	stop, err = metricsserver.ServeWithPage(f.MetricsAddr, log, cluster, ready, page, cs...)
	if errors.Is(err, metricsserver.ErrBadAddr) {
		return nil, usageError{err}
	}
	return stop, err
}
