package integration

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/binarc/binarc/internal/testenv"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// TestKubernetesContainerSettings runs the real binarc with what each
// binarc container of deploy/kubernetes's examples would get: its command
// and arguments ($(VAR) expanded as the kubelet does), its environment
// from the ConfigMap and its env entries (optional Secret keys left out,
// as when the Secret lacks them), the Secret's files in a directory of
// their own, the store and the sources pointed at a directory and a closed
// port. Each must accept its settings and start.
func TestKubernetesContainerSettings(t *testing.T) {
	t.Parallel()
	for _, example := range []string{"global-master", "user-cluster-pair", "restore", "drill"} {
		for _, c := range binarcContainers(t, "../deploy/kubernetes/examples/"+example) {
			t.Run(example+"/"+c.name, func(t *testing.T) {
				dir := t.TempDir()
				// The restore's programs run as mysql, which must reach
				// the data directory below it.
				if err := testenv.OpenToOthers(dir); err != nil {
					t.Fatal(err)
				}
				secrets := filepath.Join(dir, "secrets")
				if err := os.MkdirAll(secrets, 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(secrets, "replica-password"), []byte("secret\n"), 0o600); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(secrets, "source-password"), []byte("secret\n"), 0o600); err != nil {
					t.Fatal(err)
				}
				env := localEnv(c.env, dir, secrets)
				args := localPaths(expandVars(c.args, env), dir)
				want := "binarc " + args[0] + " starting"
				switch args[0] {
				case "restore":
					// Nothing in the store to restore: it says so, after
					// taking its settings.
					want = "no snapshot"
				case "drill":
					// No replica answers: it says so, after taking its
					// settings (and records the failed drill).
					want = "--replica mysql://binarc@127.0.0.1:1"
				}
				out := startsLogging(t, args, env, want)
				if strings.Contains(out, "secret") {
					t.Errorf("the password is in the output:\n%s", out)
				}
			})
		}
	}
}

// container is a binarc container as the kubelet would start it.
type container struct {
	name string
	args []string // after the binary
	env  []string
}

// binarcContainers builds a kustomization and returns its binarc
// containers, the environment resolved from the build's ConfigMaps.
func binarcContainers(t *testing.T, dir string) []container {
	t.Helper()
	rm, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	configs := map[string]map[string]string{}
	var pods []corev1.PodSpec
	for _, r := range rm.Resources() {
		data, err := r.AsYAML()
		if err != nil {
			t.Fatal(err)
		}
		switch r.GetKind() {
		case "ConfigMap":
			var cm corev1.ConfigMap
			mustUnmarshal(t, data, &cm)
			configs[cm.Name] = cm.Data
		case "StatefulSet":
			var v appsv1.StatefulSet
			mustUnmarshal(t, data, &v)
			pods = append(pods, v.Spec.Template.Spec)
		case "Deployment":
			var v appsv1.Deployment
			mustUnmarshal(t, data, &v)
			pods = append(pods, v.Spec.Template.Spec)
		case "Job":
			var v batchv1.Job
			mustUnmarshal(t, data, &v)
			pods = append(pods, v.Spec.Template.Spec)
		case "CronJob":
			var v batchv1.CronJob
			mustUnmarshal(t, data, &v)
			pods = append(pods, v.Spec.JobTemplate.Spec.Template.Spec)
		}
	}
	var out []container
	for _, p := range pods {
		for _, c := range p.Containers {
			var args []string
			switch {
			case strings.Contains(c.Image, "binarc") && len(c.Command) == 0:
				args = c.Args // the image's entrypoint is binarc
			case len(c.Command) > 0 && strings.HasSuffix(c.Command[0], "/binarc"):
				args = append(c.Command[1:], c.Args...)
			default:
				continue
			}
			out = append(out, container{name: c.Name, args: args, env: containerEnv(t, c, configs)})
		}
	}
	if len(out) == 0 {
		t.Fatalf("%s: no binarc container", dir)
	}
	return out
}

// containerEnv is the environment the kubelet gives c: envFrom first, then
// env, which overrides it.
func containerEnv(t *testing.T, c corev1.Container, configs map[string]map[string]string) []string {
	t.Helper()
	var env []string
	for _, ef := range c.EnvFrom {
		if ef.ConfigMapRef != nil {
			for k, v := range configs[ef.ConfigMapRef.Name] {
				env = append(env, k+"="+v)
			}
		}
	}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			env = append(env, e.Name+"="+e.Value)
		case e.ValueFrom.ConfigMapKeyRef != nil:
			ref := e.ValueFrom.ConfigMapKeyRef
			env = append(env, e.Name+"="+configs[ref.Name][ref.Key])
		case e.ValueFrom.SecretKeyRef != nil && e.ValueFrom.SecretKeyRef.Optional != nil && *e.ValueFrom.SecretKeyRef.Optional:
			// The Secret without this key: the variable is not set.
		default:
			t.Fatalf("container %s: %s comes from where this test cannot follow", c.Name, e.Name)
		}
	}
	return env
}

// localEnv points the environment at this machine: the store at a
// directory, the sources at a closed port, the metrics at a free port, the
// Secret's files at secrets.
func localEnv(env []string, dir, secrets string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		switch {
		case k == "BINARC_STORE":
			v = filepath.Join(dir, "store")
		case k == "BINARC_SOURCE", k == "BINARC_REPLICA":
			v = "mysql://binarc@127.0.0.1:1"
		case k == "BINARC_METRICS_ADDR" && v != "":
			v = "127.0.0.1:0"
		case strings.HasPrefix(v, "/run/secrets/binarc/"):
			v = filepath.Join(secrets, filepath.Base(v))
		}
		out = append(out, k+"="+v)
	}
	return out
}

// kubeVar is $(VAR) in a command or its arguments.
var kubeVar = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

// expandVars expands $(VAR) from env, as the kubelet does.
func expandVars(args, env []string) []string {
	vars := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = v
	}
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = kubeVar.ReplaceAllStringFunc(a, func(m string) string {
			if v, ok := vars[m[2:len(m)-1]]; ok {
				return v
			}
			return m
		})
	}
	return out
}

func mustUnmarshal(t *testing.T, data []byte, v any) {
	t.Helper()
	if err := yaml.Unmarshal(data, v); err != nil {
		t.Fatal(err)
	}
}

// localPaths puts the volumes a container's arguments name (/restore,
// /scratch) below dir, made as the kubelet mounts them.
func localPaths(args []string, dir string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = a
		for _, vol := range []string{"/restore", "/scratch"} {
			if a == vol || strings.HasPrefix(a, vol+"/") {
				out[i] = filepath.Join(dir, a)
				_ = os.MkdirAll(filepath.Join(dir, vol), 0o755)
			}
		}
	}
	return out
}
