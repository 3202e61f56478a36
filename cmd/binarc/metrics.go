package main

import (
	"errors"

	"github.com/binarc/binarc/internal/metricsserver"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// metricsFlags turn on the HTTP endpoint of a long-running command.
type metricsFlags struct {
	MetricsAddr string `env:"BINARC_METRICS_ADDR" placeholder:"HOST:PORT" help:"Serve Prometheus metrics on /metrics, and /healthz and /readyz, at this address (e.g. :9187 or 127.0.0.1:9187; port 0 picks one and logs it). Off when empty."`
}

// serve serves cs on --metrics-addr, if set, until stop is called.
func (f metricsFlags) serve(log zerolog.Logger, cluster string, ready func() error, cs ...prometheus.Collector) (stop func(), err error) {
	stop, err = metricsserver.Serve(f.MetricsAddr, log, cluster, ready, cs...)
	if errors.Is(err, metricsserver.ErrBadAddr) {
		return nil, usageError{err}
	}
	return stop, err
}
