package integration

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSystemdUnitSettings runs binarc as deploy/systemd's units would:
// their Environment= lines (specifiers filled in), the credentials
// directory, deploy/systemd/example.env as the cluster's .env file (its
// store and source pointed at a directory and a closed port), and
// ExecStart's arguments. binarc must accept every setting and start; with
// the example's commented zero-loss lines turned on too. (A spool
// directory set for every stream once made binarc refuse to start.)
func TestSystemdUnitSettings(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	creds := filepath.Join(dir, "credentials")
	if err := os.MkdirAll(creds, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(creds, "binarc_source-password"), []byte("secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fill := strings.NewReplacer("%i", "main", "%d", creds, "%S", dir)
	example := readEnvFile(t, "../deploy/systemd/example.env", false)
	zeroLoss := readEnvFile(t, "../deploy/systemd/example.env", true)
	for _, c := range []struct {
		unit, started string
		envFile       []string
	}{
		{"binarc-stream@.service", "binarc stream starting", example},
		{"binarc-stream@.service", "binarc stream starting", zeroLoss},
		{"binarc-snapshot@.service", "binarc snapshot starting", example},
	} {
		env, args := unitCommand(t, "../deploy/systemd/"+c.unit, fill)
		for _, kv := range c.envFile {
			k, v, _ := strings.Cut(kv, "=")
			switch k {
			case "BINARC_STORE":
				v = filepath.Join(dir, "store")
			case "BINARC_SOURCE":
				v = "mysql://binarc@127.0.0.1:1"
			case "BINARC_METRICS_ADDR":
				v = "127.0.0.1:0"
			case "BINARC_SPOOL_DIR":
				v = filepath.Join(dir, "spool")
			}
			env = append(env, k+"="+v) // EnvironmentFile= overrides Environment=
		}
		out := startsLogging(t, args, env, c.started)
		if strings.Contains(out, "secret") {
			t.Errorf("%s: the password is in the output:\n%s", c.unit, out)
		}
	}
}

// unitCommand reads a unit's Environment= lines and ExecStart's arguments,
// with its specifiers filled in.
func unitCommand(t *testing.T, path string, fill *strings.Replacer) (env, args []string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "Environment="); ok {
			env = append(env, fill.Replace(v))
		}
		if v, ok := strings.CutPrefix(line, "ExecStart="); ok {
			args = strings.Fields(fill.Replace(v))[1:]
		}
	}
	if len(args) == 0 {
		t.Fatalf("%s has no ExecStart=", path)
	}
	return env, args
}

// readEnvFile reads KEY=VALUE lines; with uncomment, "#BINARC_…=" lines
// too.
func readEnvFile(t *testing.T, path string, uncomment bool) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if uncomment && strings.HasPrefix(line, "#BINARC_") && !strings.HasPrefix(line, "#BINARC_ENCRYPT_TO") {
			line = line[1:]
		}
		if line != "" && !strings.HasPrefix(line, "#") {
			out = append(out, line)
		}
	}
	return out
}

// startsLogging runs binarc with args and only env (and PATH), waits for
// a log line containing want, stops it, and returns its output. It fails
// if binarc exits without that line, or with status 2 (bad input).
func startsLogging(t *testing.T, args, env []string, want string) string {
	t.Helper()
	cmd := exec.Command(binarcPath, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}, env...)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	deadline := time.After(time.Minute)
	for !strings.Contains(out.String(), want) {
		select {
		case err := <-done:
			// A one-shot command may have started and failed on the
			// closed port already; bad settings exit 2 before starting.
			if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == 1 && strings.Contains(out.String(), want) {
				return out.String()
			}
			t.Fatalf("binarc %v exited (%v) before %q:\n%s", args, err, want, out.String())
		case <-deadline:
			_ = cmd.Process.Kill()
			t.Fatalf("binarc %v: no %q within a minute:\n%s", args, want, out.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	_ = cmd.Process.Kill()
	<-done
	return out.String()
}
