package deploy

import (
	"embed"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"sigs.k8s.io/yaml"
)

// Files are the dashboard and the alert rules, as shipped.
//
//go:embed grafana/binarc.json kubernetes/base/prometheusrule.yaml
var files embed.FS

const (
	dashboardFile = "grafana/binarc.json"
	rulesFile     = "kubernetes/base/prometheusrule.yaml"
)

// AlertRules returns the PrometheusRule's groups, parsed and validated by
// Prometheus' own rule parser (the one `promtool check rules` runs):
// unknown fields, bad durations, a PromQL error or a template that does
// not parse are errors.
func AlertRules() (*rulefmt.RuleGroups, error) {
	data, err := files.ReadFile(rulesFile)
	if err != nil {
		return nil, err
	}
	var pr struct {
		Spec struct {
			Groups []any `json:"groups"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(data, &pr); err != nil {
		return nil, fmt.Errorf("%s: %w", rulesFile, err)
	}
	groups, err := ParseRuleGroups(pr.Spec.Groups)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", rulesFile, err)
	}
	return groups, nil
}

// ParseRuleGroups checks a PrometheusRule's spec.groups with Prometheus'
// rule parser, which reads the same groups from a rule file.
func ParseRuleGroups(groups []any) (*rulefmt.RuleGroups, error) {
	spec, err := yaml.Marshal(map[string]any{"groups": groups})
	if err != nil {
		return nil, err
	}
	rgs, errs := rulefmt.Parse(spec, false)
	if len(errs) > 0 {
		return nil, fmt.Errorf("%d errors in the rules, the first: %w", len(errs), errs[0])
	}
	return rgs, nil
}

// MetricNames returns every metric the dashboard's queries and variables
// and the alert rules select, each with where it is used ("alert
// BinarcLossWindowHigh", "dashboard panel \"Loss window\""). Histogram
// series keep the suffix they are queried by (_bucket, _sum, _count).
func MetricNames() (map[string][]string, error) {
	names := map[string][]string{}
	groups, err := AlertRules()
	if err != nil {
		return nil, err
	}
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			if err := addSelected(names, r.Expr, "alert "+r.Alert+r.Record); err != nil {
				return nil, err
			}
		}
	}
	queries, err := dashboardQueries()
	if err != nil {
		return nil, err
	}
	for _, q := range queries {
		if err := addSelected(names, q.expr, q.where); err != nil {
			return nil, err
		}
	}
	return names, nil
}

// addSelected parses expr and adds the metric of each of its selectors.
func addSelected(names map[string][]string, expr, where string) error {
	e, err := parser.ParseExpr(expr)
	if err != nil {
		return fmt.Errorf("%s: %q: %w", where, expr, err)
	}
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		name := vs.Name
		for _, m := range vs.LabelMatchers {
			if m.Name == labels.MetricName && m.Type == labels.MatchEqual {
				name = m.Value
			}
		}
		if name != "" {
			names[name] = append(names[name], where)
		}
		return nil
	})
	return nil
}

// query is one PromQL expression of the dashboard and where it is.
type query struct{ expr, where string }

// dashboardPanel is what a Grafana panel holds that names metrics; a
// collapsed row holds its panels.
type dashboardPanel struct {
	Title   string                  `json:"title"`
	Targets []struct{ Expr string } `json:"targets"`
	Panels  []dashboardPanel        `json:"panels"`
}

// grafanaInterval are Grafana's own variables that stand for a range: a
// fixed one parses the same way.
var grafanaInterval = regexp.MustCompile(`\$__(rate_interval|interval|range)|\$\{__(rate_interval|interval|range)\}`)

// labelValues is a query variable's label_values(METRIC, LABEL).
var labelValues = regexp.MustCompile(`^label_values\((.+),\s*[a-zA-Z_]+\)$`)

// dashboardQueries returns the PromQL of every panel target and query
// variable of the dashboard, Grafana's interval variables replaced.
func dashboardQueries() ([]query, error) {
	data, err := files.ReadFile(dashboardFile)
	if err != nil {
		return nil, err
	}
	var d struct {
		Panels      []dashboardPanel `json:"panels"`
		Annotations struct {
			List []struct{ Name, Expr string } `json:"list"`
		} `json:"annotations"`
		Templating struct {
			List []struct {
				Name, Type string
				Query      any `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		return nil, fmt.Errorf("%s: %w", dashboardFile, err)
	}
	var out []query
	var walk func([]dashboardPanel)
	walk = func(ps []dashboardPanel) {
		for _, p := range ps {
			for _, t := range p.Targets {
				out = append(out, query{grafanaInterval.ReplaceAllString(t.Expr, "5m"), fmt.Sprintf("dashboard panel %q", p.Title)})
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	for _, a := range d.Annotations.List {
		if a.Expr != "" {
			out = append(out, query{grafanaInterval.ReplaceAllString(a.Expr, "5m"), fmt.Sprintf("dashboard annotation %q", a.Name)})
		}
	}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		q, _ := v.Query.(string)
		if qm, ok := v.Query.(map[string]any); ok {
			q, _ = qm["query"].(string)
		}
		m := labelValues.FindStringSubmatch(strings.TrimSpace(q))
		if m == nil {
			return nil, fmt.Errorf("%s: variable %q: query %q is not label_values(METRIC, LABEL)", dashboardFile, v.Name, q)
		}
		out = append(out, query{m[1], fmt.Sprintf("dashboard variable %q", v.Name)})
	}
	return out, nil
}
