package deploy

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/model/rulefmt"
	"sigs.k8s.io/yaml"
)

// externalMetrics are the series the rules and the dashboard read that
// binarc does not export, and who does.
var externalMetrics = map[string]string{
	"up": "Prometheus, for every scrape target",
	"kube_cronjob_status_last_successful_time": "kube-state-metrics, for the snapshot CronJob",
	"process_resident_memory_bytes":            "the Prometheus client's process collector, in binarc's /metrics",
}

// TestMetricNamesDocumented: every binarc series the dashboard and the
// rules use is in docs/OPERATIONS.md's tables, and the others are known.
// (That binarc exports each is checked against a live binarc by
// integration's TestDeployMetricsExported.)
func TestMetricNamesDocumented(t *testing.T) {
	names, err := MetricNames()
	if err != nil {
		t.Fatal(err)
	}
	ops, err := os.ReadFile("../docs/OPERATIONS.md")
	if err != nil {
		t.Fatal(err)
	}
	histogram := regexp.MustCompile(`_(bucket|sum|count)$`)
	for name, uses := range names {
		if !strings.HasPrefix(name, "binarc_") {
			if _, ok := externalMetrics[name]; !ok {
				t.Errorf("%s (used by %s) is not binarc's and not a known external series", name, strings.Join(uses, ", "))
			}
			continue
		}
		if base := histogram.ReplaceAllString(name, ""); !strings.Contains(string(ops), "`"+base+"`") && !strings.Contains(string(ops), "`"+base+"{") {
			t.Errorf("%s (used by %s) is not in docs/OPERATIONS.md", name, strings.Join(uses, ", "))
		}
	}
	for _, want := range []string{"binarc_loss_window_seconds", "binarc_semi_sync_ack_latency_seconds_bucket", "binarc_snapshot_last_success_timestamp_seconds", "up"} {
		if len(names[want]) == 0 {
			t.Errorf("%s not found in the dashboard or the rules: the parsing misses selectors", want)
		}
	}
}

// TestParseRuleGroupsRejects: Prometheus' parser refuses what Prometheus
// would refuse to load.
func TestParseRuleGroupsRejects(t *testing.T) {
	for _, rule := range []map[string]any{
		{"alert": "X", "expr": "rate(binarc_upload_retries_total[5m] > 0"},
		{"alert": "X", "expr": "up == 0", "for": "ten minutes"},
		{"alert": "X", "expr": "up == 0", "severity": "page"},
	} {
		if _, err := ParseRuleGroups([]any{map[string]any{"name": "g", "rules": []any{rule}}}); err == nil {
			t.Errorf("rule %v parsed without error", rule)
		}
	}
}

// TestRulesMatchOperations keeps docs/OPERATIONS.md's example rules and
// the shipped PrometheusRule the same: each documented alert is shipped
// with the same expression, duration and severity.
func TestRulesMatchOperations(t *testing.T) {
	ops, err := os.ReadFile("../docs/OPERATIONS.md")
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(ops), "```yaml\ngroups:")
	block, _, ok2 := strings.Cut(block, "```")
	if !ok || !ok2 {
		t.Fatal("docs/OPERATIONS.md has no ```yaml block of rule groups")
	}
	var doc struct {
		Groups []any `json:"groups"`
	}
	if err := yaml.Unmarshal([]byte("groups:"+block), &doc); err != nil {
		t.Fatal(err)
	}
	documented, err := ParseRuleGroups(doc.Groups)
	if err != nil {
		t.Fatalf("docs/OPERATIONS.md's rules: %v", err)
	}
	shipped, err := AlertRules()
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]rulefmt.Rule{}
	for _, g := range shipped.Groups {
		for _, r := range g.Rules {
			byName[r.Alert] = r
		}
	}
	for _, g := range documented.Groups {
		for _, d := range g.Rules {
			s, ok := byName[d.Alert]
			switch {
			case !ok:
				t.Errorf("alert %s is in docs/OPERATIONS.md but not in %s", d.Alert, rulesFile)
			case s.Expr != d.Expr || s.For != d.For || s.Labels["severity"] != d.Labels["severity"]:
				t.Errorf("alert %s differs: documented %q for %v %v, shipped %q for %v %v", d.Alert, d.Expr, d.For, d.Labels, s.Expr, s.For, s.Labels)
			}
		}
	}
}
