package deploy

import (
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// serviceMonitor is the part of the Prometheus operator's ServiceMonitor
// (monitoring.coreos.com/v1, its CRD's schema) the manifests may use;
// decoding strictly into it rejects a field outside it, misspelt or not
// (add a field here, from the CRD, to use it).
type serviceMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		JobLabel          string               `json:"jobLabel,omitempty"`
		TargetLabels      []string             `json:"targetLabels,omitempty"`
		PodTargetLabels   []string             `json:"podTargetLabels,omitempty"`
		Selector          metav1.LabelSelector `json:"selector"`
		NamespaceSelector *namespaceSelector   `json:"namespaceSelector,omitempty"`
		Endpoints         []monitorEndpoint    `json:"endpoints"`
		SampleLimit       *uint64              `json:"sampleLimit,omitempty"`
	} `json:"spec"`
}

type namespaceSelector struct {
	Any        bool     `json:"any,omitempty"`
	MatchNames []string `json:"matchNames,omitempty"`
}

type monitorEndpoint struct {
	Port          string              `json:"port,omitempty"`
	TargetPort    *intstr.IntOrString `json:"targetPort,omitempty"`
	Path          string              `json:"path,omitempty"`
	Scheme        string              `json:"scheme,omitempty"`
	Interval      string              `json:"interval,omitempty"`
	ScrapeTimeout string              `json:"scrapeTimeout,omitempty"`
	HonorLabels   bool                `json:"honorLabels,omitempty"`
}

// prometheusRule is a PrometheusRule; its groups are checked by
// Prometheus' rule parser (AlertRules).
type prometheusRule struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Groups []any `json:"groups"`
	} `json:"spec"`
}

// checkServiceMonitors: each endpoint of a ServiceMonitor names a port of
// a Service its selector matches, when the build has the Service (the
// base on its own has none).
func checkServiceMonitors(t *testing.T, o *objects) {
	for _, m := range o.monitors {
		sel, err := metav1.LabelSelectorAsSelector(&m.Spec.Selector)
		if err != nil {
			t.Errorf("ServiceMonitor %s: selector: %v", m.Name, err)
			continue
		}
		if len(m.Spec.Endpoints) == 0 {
			t.Errorf("ServiceMonitor %s has no endpoints", m.Name)
		}
		for _, ep := range m.Spec.Endpoints {
			if ep.Port == "" || ep.Path != "/metrics" {
				t.Errorf("ServiceMonitor %s: endpoint %+v: want a named port and path /metrics", m.Name, ep)
			}
			for _, s := range o.services {
				if !sel.Matches(labels.Set(s.Labels)) {
					continue
				}
				if !slices.ContainsFunc(s.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == ep.Port }) {
					t.Errorf("ServiceMonitor %s selects Service %s, which has no port %q", m.Name, s.Name, ep.Port)
				}
			}
		}
	}
	if o.hasStream() && !o.monitored() {
		t.Errorf("the build runs binarc stream but no ServiceMonitor selects a Service for it")
	}
}

// isBase tells whether the build is the base's: its CronJob, no stream.
func (o *objects) isBase() bool {
	return len(o.monitors) > 0 && !o.hasStream()
}

// hasStream tells whether a pod of the build runs binarc stream.
func (o *objects) hasStream() bool {
	for _, p := range o.pods {
		for _, c := range binarcContainers(p.spec) {
			if slices.Contains(c.Args, "stream") {
				return true
			}
		}
	}
	return false
}

// monitored tells whether a ServiceMonitor selects a Service of the build.
func (o *objects) monitored() bool {
	for _, m := range o.monitors {
		sel, err := metav1.LabelSelectorAsSelector(&m.Spec.Selector)
		for _, s := range o.services {
			if err == nil && sel.Matches(labels.Set(s.Labels)) {
				return true
			}
		}
	}
	return false
}

// checkPrometheusRules: the PrometheusRule in a build is the shipped one,
// which Prometheus' own rule parser accepts.
func checkPrometheusRules(t *testing.T, o *objects) {
	if len(o.rules) == 0 {
		t.Errorf("no PrometheusRule in the build")
		return
	}
	groups, err := ParseRuleGroups(o.rules[0].Spec.Groups)
	if err != nil {
		t.Fatalf("PrometheusRule %s: %v", o.rules[0].Name, err)
	}
	var alerts []string
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			alerts = append(alerts, r.Alert)
			if r.Labels["severity"] == "" || r.Annotations["summary"] == "" {
				t.Errorf("alert %s: no severity label or summary", r.Alert)
			}
		}
	}
	for _, want := range []string{"BinarcLossWindowHigh", "BinarcDisconnected", "BinarcDown", "BinarcNewTimeline", "BinarcNoRecentSnapshot"} {
		if !slices.Contains(alerts, want) {
			t.Errorf("alert %s missing (have %s)", want, strings.Join(alerts, ", "))
		}
	}
}
