package deploy

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// kustomizations are every build: the base on its own (which an overlay
// completes: it leaves the sources to the overlay) and each example.
var kustomizations = []struct {
	dir      string
	complete bool // every reference resolves in the build itself
}{
	{"kubernetes/base", false},
	{"kubernetes/examples/global-master", true},
	{"kubernetes/examples/user-cluster-pair", true},
	{"kubernetes/examples/restore", true},
	{"kubernetes/examples/drill", true},
}

// TestKubernetesObjects builds each kustomization as kubectl apply -k
// would and decodes every object strictly into its Kubernetes API type
// (an unknown or misplaced field is an error), then checks what the
// manifests promise: security contexts, resources, secrets only by
// reference, references that resolve, scraping that finds its Service.
func TestKubernetesObjects(t *testing.T) {
	for _, k := range kustomizations {
		t.Run(filepath.Base(k.dir), func(t *testing.T) {
			objs := buildKustomization(t, k.dir)
			if len(objs.pods) == 0 {
				t.Fatal("the build runs no pods")
			}
			checkPods(t, objs)
			checkSecretsByReference(t, objs)
			if k.complete {
				checkConfigRefs(t, objs)
			}
			if objs.hasStream() || objs.isBase() {
				checkServiceMonitors(t, objs)
				checkPrometheusRules(t, objs)
			}
		})
	}
}

// TestStrictDecodingRejects shows that the decoding used above fails on
// a field the API does not have.
func TestStrictDecodingRejects(t *testing.T) {
	bad := []byte("apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: x}\nspec:\n  schedule: '@daily'\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          containers: [{name: x, image: x, securityContext: {readOnlyRootFS: true}}]\n")
	var objs objects
	if err := objs.add(bad); err == nil || !strings.Contains(err.Error(), "readOnlyRootFS") {
		t.Errorf("a misspelt field decoded with error %v, want one naming it", err)
	}
}

// objects are a build's objects, decoded.
type objects struct {
	pods     []podOf // the pod templates, of every kind that has one
	services []corev1.Service
	configs  map[string]corev1.ConfigMap
	secrets  []corev1.Secret
	monitors []serviceMonitor
	rules    []prometheusRule
}

// podOf is a pod template and the object holding it.
type podOf struct {
	owner string
	spec  corev1.PodSpec
}

// buildKustomization runs kustomize on dir and decodes its output.
func buildKustomization(t *testing.T, dir string) *objects {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	rm, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	objs := &objects{configs: map[string]corev1.ConfigMap{}}
	for _, r := range rm.Resources() {
		data, err := r.AsYAML()
		if err != nil {
			t.Fatalf("%s: %v", r.CurId(), err)
		}
		if err := objs.add(data); err != nil {
			t.Errorf("%s: %v", r.CurId(), err)
		}
	}
	return objs
}

// add decodes one object strictly, by its apiVersion and kind.
func (o *objects) add(data []byte) error {
	var tm struct{ APIVersion, Kind string }
	if err := yaml.Unmarshal(data, &tm); err != nil {
		return err
	}
	switch tm.APIVersion + " " + tm.Kind {
	case "v1 ConfigMap":
		return decodeStrict(data, func(v corev1.ConfigMap) { o.configs[v.Name] = v })
	case "v1 Secret":
		return decodeStrict(data, func(v corev1.Secret) { o.secrets = append(o.secrets, v) })
	case "v1 Service":
		return decodeStrict(data, func(v corev1.Service) { o.services = append(o.services, v) })
	case "v1 ServiceAccount":
		return yaml.UnmarshalStrict(data, &corev1.ServiceAccount{})
	case "v1 PersistentVolumeClaim":
		return yaml.UnmarshalStrict(data, &corev1.PersistentVolumeClaim{})
	case "apps/v1 StatefulSet":
		return decodeStrict(data, func(v appsv1.StatefulSet) {
			o.pods = append(o.pods, podOf{"StatefulSet " + v.Name, v.Spec.Template.Spec})
		})
	case "apps/v1 Deployment":
		return decodeStrict(data, func(v appsv1.Deployment) {
			o.pods = append(o.pods, podOf{"Deployment " + v.Name, v.Spec.Template.Spec})
		})
	case "batch/v1 Job":
		return decodeStrict(data, func(v batchv1.Job) {
			o.pods = append(o.pods, podOf{"Job " + v.Name, v.Spec.Template.Spec})
		})
	case "batch/v1 CronJob":
		return decodeStrict(data, func(v batchv1.CronJob) {
			o.pods = append(o.pods, podOf{"CronJob " + v.Name, v.Spec.JobTemplate.Spec.Template.Spec})
		})
	case "monitoring.coreos.com/v1 ServiceMonitor":
		return decodeStrict(data, func(v serviceMonitor) { o.monitors = append(o.monitors, v) })
	case "monitoring.coreos.com/v1 PrometheusRule":
		return decodeStrict(data, func(v prometheusRule) { o.rules = append(o.rules, v) })
	}
	return fmt.Errorf("%s %s: a kind this test does not decode: add it", tm.APIVersion, tm.Kind)
}

// decodeStrict decodes data strictly into a T and gives keep what it
// decoded, also when decoding failed (as far as it got).
func decodeStrict[T any](data []byte, keep func(T)) error {
	var v T
	err := yaml.UnmarshalStrict(data, &v)
	keep(v)
	return err
}

// binarcContainers are the containers that run binarc: its image, or its
// binary copied into another.
func binarcContainers(p corev1.PodSpec) []corev1.Container {
	var out []corev1.Container
	for _, c := range append(slices.Clone(p.InitContainers), p.Containers...) {
		if strings.Contains(c.Image, "binarc") || slices.ContainsFunc(c.Command, func(s string) bool { return strings.Contains(s, "binarc") }) {
			out = append(out, c)
		}
	}
	return out
}

// checkPods: every binarc container runs as a user other than root, with
// no privilege escalation, no capabilities and a read-only root
// filesystem, and has memory requested and limited; no pod running
// binarc gets a Kubernetes API token.
func checkPods(t *testing.T, o *objects) {
	for _, p := range o.pods {
		cs := binarcContainers(p.spec)
		if len(cs) > 0 && p.spec.AutomountServiceAccountToken != nil && *p.spec.AutomountServiceAccountToken {
			t.Errorf("%s mounts a service account token; binarc never calls the API", p.owner)
		}
		for _, c := range cs {
			where := p.owner + " container " + c.Name
			sc := c.SecurityContext
			if sc == nil {
				t.Errorf("%s: no securityContext", where)
				continue
			}
			nonRoot := sc.RunAsNonRoot != nil && *sc.RunAsNonRoot
			if ps := p.spec.SecurityContext; ps != nil && ps.RunAsNonRoot != nil && *ps.RunAsNonRoot {
				nonRoot = true
			}
			if !nonRoot {
				t.Errorf("%s: runAsNonRoot is not set (container or pod)", where)
			}
			if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
				t.Errorf("%s: allowPrivilegeEscalation is not false", where)
			}
			if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
				t.Errorf("%s: readOnlyRootFilesystem is not true", where)
			}
			if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
				t.Errorf("%s: capabilities do not drop ALL", where)
			}
			if c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
				t.Errorf("%s: memory request or limit missing", where)
			}
		}
	}
}

// checkSecretsByReference: no Secret is part of a build (its values would
// be in the repository), and no variable that looks secret has a value.
func checkSecretsByReference(t *testing.T, o *objects) {
	for _, s := range o.secrets {
		t.Errorf("Secret %s is in the build: secrets are created apart and referenced", s.Name)
	}
	for _, p := range o.pods {
		for _, c := range append(slices.Clone(p.spec.InitContainers), p.spec.Containers...) {
			for _, e := range c.Env {
				secretName := strings.Contains(e.Name, "PASSWORD") || strings.Contains(e.Name, "SECRET") || strings.Contains(e.Name, "IDENTITY") || strings.HasSuffix(e.Name, "_KEY")
				if secretName && !strings.HasSuffix(e.Name, "_FILE") && e.Value != "" {
					t.Errorf("%s container %s: %s has a value in the manifest; use a file from a Secret", p.owner, c.Name, e.Name)
				}
			}
		}
	}
}

// checkConfigRefs: every ConfigMap a pod reads is in the build, with each
// key it reads (kustomize renames generated ConfigMaps in references, so
// a reference left unrenamed shows here too).
func checkConfigRefs(t *testing.T, o *objects) {
	for _, p := range o.pods {
		for _, c := range append(slices.Clone(p.spec.InitContainers), p.spec.Containers...) {
			for _, ef := range c.EnvFrom {
				if ef.ConfigMapRef != nil {
					if _, ok := o.configs[ef.ConfigMapRef.Name]; !ok {
						t.Errorf("%s container %s: envFrom ConfigMap %s is not in the build", p.owner, c.Name, ef.ConfigMapRef.Name)
					}
				}
			}
			for _, e := range c.Env {
				ref := e.ValueFrom
				if ref == nil || ref.ConfigMapKeyRef == nil {
					continue
				}
				cm, ok := o.configs[ref.ConfigMapKeyRef.Name]
				if _, has := cm.Data[ref.ConfigMapKeyRef.Key]; !ok || !has {
					t.Errorf("%s container %s: %s reads ConfigMap %s key %s, which the build does not have", p.owner, c.Name, e.Name, ref.ConfigMapKeyRef.Name, ref.ConfigMapKeyRef.Key)
				}
			}
		}
	}
}
