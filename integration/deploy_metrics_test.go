package integration

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/binarc/binarc/deploy"
)

// notBinarcs are the series the dashboard and the rules read from other
// exporters.
var notBinarcs = map[string]bool{
	"up": true, // Prometheus, per scrape target
	"kube_cronjob_status_last_successful_time": true, // kube-state-metrics
}

// TestDeployMetricsExported checks that every metric the Grafana
// dashboard and the alert rules (deploy/) select is exported by a real
// binarc: binarc stream with --semi-sync against a MariaDB primary that
// waits for it, and binarc snapshot --schedule after a first snapshot,
// both storing to versitygw.
// A renamed metric or a typo in a panel fails here, naming the panel.
func TestDeployMetricsExported(t *testing.T) {
	t.Parallel()
	names, err := deploy.MetricNames()
	if err != nil {
		t.Fatal(err)
	}
	if len(names["binarc_semi_sync_ack_latency_seconds_bucket"]) == 0 || len(names["binarc_snapshot_last_success_timestamp_seconds"]) == 0 {
		t.Fatalf("the dashboard and rules name too little to check: %v", names)
	}

	e := newEnv(t, semiSyncPrimary(time.Minute))
	// Before semi-sync is on: with it, these statements would wait for a
	// semi-sync replica.
	e.primary.Exec(t, fmt.Sprintf("CREATE USER '%s'@'127.0.0.1' IDENTIFIED BY '%s'", primUser, replPass),
		fmt.Sprintf("GRANT RELOAD, PROCESS, BINLOG MONITOR, SELECT, SHOW VIEW, TRIGGER, EVENT, SLAVE MONITOR ON *.* TO '%s'@'127.0.0.1'", primUser))
	e.primary.Exec(t, "SET GLOBAL rpl_semi_sync_master_enabled = ON")

	stream := e.start(e.streamArgs("--semi-sync", "--metrics-addr", "127.0.0.1:0")...)
	streamScraper := newScraper(t, stream)
	waitSemiSyncReplica(t, e.primary)
	// Commits that binarc acknowledges, so that every series has had a value.
	if err := writeLoad(context.Background(), e.primary, loadOptions{From: 0, To: 20}); err != nil {
		t.Fatal(err)
	}
	e.waitArchived(time.Minute)

	// One snapshot stored, then the scheduler, whose series describe it
	// (with none stored, only the success time is exported, as 0).
	snapshotArgs := []string{"snapshot", "--source", e.primary.SourceURL(primUser, ""), "--allow-primary", "--method", "logical",
		"--store", e.store, "--cluster", e.cluster}
	if out, code := e.run(snapshotArgs...); code != 0 {
		t.Fatalf("binarc snapshot exited %d:\n%s", code, out)
	}
	snapshot := e.start(append(snapshotArgs, "--schedule", "@yearly", "--metrics-addr", "127.0.0.1:0")...)
	snapshotScraper := newScraper(t, snapshot)
	// binarc drill --schedule exports the drill metrics from its start
	// (read from the store's drill records; none yet).
	drill := e.start("drill", "--store", e.store, "--cluster", e.cluster, "--schedule", "@yearly", "--metrics-addr", "127.0.0.1:0")
	drillScraper := newScraper(t, drill)

	var missing []string
	deadline := time.Now().Add(time.Minute)
	for {
		exported := exportedNames(streamScraper.scrape(), snapshotScraper.scrape(), drillScraper.scrape())
		missing = missing[:0]
		for name, uses := range names {
			if !notBinarcs[name] && !exported[name] {
				missing = append(missing, fmt.Sprintf("%s (%s)", name, strings.Join(uses, "; ")))
			}
		}
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("used by deploy/ but not exported by binarc stream --semi-sync, binarc snapshot --schedule or binarc drill --schedule:\n%s", strings.Join(missing, "\n"))
	}
	drill.stop(t)
	snapshot.stop(t)
	stream.stop(t)
}

// exportedNames are the metric names of scrapes (a histogram's as
// exposed: _bucket, _sum, _count).
func exportedNames(scrapes ...metrics) map[string]bool {
	out := map[string]bool{}
	for _, m := range scrapes {
		for series := range m {
			name, _, _ := strings.Cut(series, "{")
			out[name] = true
		}
	}
	return out
}
