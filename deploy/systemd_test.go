package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// units are the systemd files shipped, and the instances verified.
var (
	unitFiles = []string{"binarc-stream@.service", "binarc-snapshot@.service", "binarc-snapshot@.timer"}
	instances = []string{"binarc-stream@main.service", "binarc-snapshot@main.service", "binarc-snapshot@main.timer"}
)

// TestSystemdUnitsVerify runs systemd-analyze verify on the units, as
// installed in a root of their own (beside the system's own units, which
// they depend on, and an executable at ExecStart's path). verify exits 0 on
// an unknown key or a value it cannot parse and only prints a warning, so
// any output is a failure; a broken copy of a unit shows that it is.
func TestSystemdUnitsVerify(t *testing.T) {
	analyze := lookSystemdAnalyze(t)
	root := unitRoot(t)
	for _, f := range unitFiles {
		copyFile(t, filepath.Join("systemd", f), filepath.Join(root, "etc/systemd/system", f))
	}
	if out := verifyUnits(t, analyze, root, instances...); out != "" {
		t.Errorf("systemd-analyze verify %v:\n%s", instances, out)
	}

	// A typo in a hardening option is reported.
	data, err := os.ReadFile(filepath.Join("systemd", "binarc-stream@.service"))
	if err != nil {
		t.Fatal(err)
	}
	broken := strings.Replace(string(data), "ProtectSystem=strict", "ProtectSytem=strict", 1)
	writeFile(t, filepath.Join(root, "etc/systemd/system/broken@.service"), broken)
	if out := verifyUnits(t, analyze, root, "broken@main.service"); !strings.Contains(out, "ProtectSytem") {
		t.Errorf("systemd-analyze verify of a unit with a misspelt key printed %q, want a warning naming it", out)
	}
}

// TestSystemdUnitsHardened keeps the hardening the units promise: a
// change that drops one fails here, not on a host.
func TestSystemdUnitsHardened(t *testing.T) {
	common := []string{"NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes",
		"CapabilityBoundingSet=\n", "LoadCredential=binarc:/etc/binarc/credentials/%i",
		"Environment=BINARC_SOURCE_PASSWORD_FILE=%d/binarc_source-password", "EnvironmentFile=/etc/binarc/%i.env"}
	for f, extra := range map[string][]string{
		"binarc-stream@.service":   {"DynamicUser=yes", "ExecStart=/usr/local/bin/binarc stream\n"},
		"binarc-snapshot@.service": {"User=mysql", "ExecStart=/usr/local/bin/binarc snapshot --metrics-addr=\n"},
	} {
		data, err := os.ReadFile(filepath.Join("systemd", f))
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range append(common, extra...) {
			if !strings.Contains(string(data), "\n"+want) {
				t.Errorf("%s: no line %q", f, want)
			}
		}
		if strings.Contains(string(data), "PASSWORD=") {
			t.Errorf("%s sets a password in the environment: passwords come from LoadCredential=", f)
		}
	}
}

// lookSystemdAnalyze finds systemd-analyze (Debian's systemd package,
// installed by scripts/deps.sh); without it the test is skipped, loudly.
func lookSystemdAnalyze(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not found (apt-get install systemd): the units are not verified")
	}
	return p
}

// unitRoot makes a root for systemd-analyze --root: the system's units
// (sysinit.target and the rest the units are ordered after) and an
// executable at /usr/local/bin/binarc.
func unitRoot(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	var sys string
	for _, d := range []string{"/usr/lib/systemd/system", "/lib/systemd/system"} {
		if _, err := os.Stat(filepath.Join(d, "sysinit.target")); err == nil {
			sys = d
			break
		}
	}
	if sys == "" {
		t.Skip("no systemd units on this machine (sysinit.target): the units are not verified")
	}
	if err := os.CopyFS(filepath.Join(root, "usr/lib/systemd/system"), os.DirFS(sys)); err != nil {
		t.Fatalf("copying %s: %v", sys, err)
	}
	writeFile(t, filepath.Join(root, "usr/local/bin/binarc"), "#!/bin/sh\n")
	if err := os.Chmod(filepath.Join(root, "usr/local/bin/binarc"), 0o755); err != nil {
		t.Fatal(err)
	}
	return root
}

// verifyUnits returns what systemd-analyze verify printed about units.
func verifyUnits(t *testing.T, analyze, root string, units ...string) string {
	t.Helper()
	args := append([]string{"verify", "--root=" + root, "--man=no"}, units...)
	out, err := exec.Command(analyze, args...).CombinedOutput()
	if err != nil && len(out) == 0 {
		t.Fatalf("systemd-analyze %v: %v", args, err)
	}
	return strings.TrimSpace(string(out))
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, to, string(data))
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}
