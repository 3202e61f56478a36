// Package deploy holds the files that run binarc where operators run it,
// and the tests that check them offline:
//
//	systemd/     binarc-stream@.service, binarc-snapshot@.service and .timer
//	kubernetes/  a kustomize base and overlays (the stream sidecar, the
//	             snapshot CronJob, a restore Job, scraping and alerts)
//	grafana/     the dashboard
//
// Its Go code reads the metric names the dashboard and the alert rules
// use (MetricNames), so that a test against a live binarc can check that
// the binary exports each of them. It must not be imported by shipped
// commands: it is tooling around the binary, not part of it.
package deploy
