package integration

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// runDemo runs scripts/demo.sh, as make demo does, with the binary under
// test, its archive and logs in a test directory, and extraEnv; it returns
// the output and the exit status.
func runDemo(t *testing.T, extraEnv ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", filepath.Join("..", "scripts", "demo.sh"))
	// SIGTERM, not SIGKILL, on timeout: the script's trap stops its servers.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 2 * time.Minute
	cmd.Env = append(os.Environ(),
		"BINARC_BIN="+binarcPath,
		"BINARC_DEMO_DIR="+filepath.Join(t.TempDir(), "demo-data"),
		"BINARC_DEMO_SECONDS=2")
	cmd.Env = append(cmd.Env, extraEnv...)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("demo.sh still running after 5 minutes:\n%s", out)
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return string(out), ee.ExitCode()
	} else if err != nil {
		t.Fatalf("demo.sh: %v", err)
	}
	return string(out), 0
}

var demoIdentical = regexp.MustCompile(`(?m)^identical: all \d+ tables equal the primary's`)

// TestDemo runs make demo's script end to end (primary, GTID replica,
// stream, snapshot, a DROP found with binlog events and left out by
// restore --skip-gtid, every table's checksum compared, ls, verify): it
// must exit 0 and say "identical". With the DROP replayed instead, the
// same script must fail: its comparison is what decides.
func TestDemo(t *testing.T) {
	t.Parallel()
	out, code := runDemo(t)
	if code != 0 || !demoIdentical.MatchString(out) {
		t.Fatalf("demo.sh exited %d without the identical line:\n%s", code, out)
	}
	for _, want := range []string{
		"$ binarc snapshot ", "IO=Yes SQL=No",
		"$ binarc binlog events ", "DROP TABLE `shop`.`orders`",
		"$ binarc restore ", "--skip-gtid 0-1-",
		"$ binarc verify ", "binarc stream: exit status 0",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the demo's output lacks %q:\n%s", want, out)
		}
	}

	out, code = runDemo(t, "BINARC_DEMO_FAULT=keep-drop")
	missing := regexp.MustCompile(`(?m)^ +shop\.orders +\d+ +\(missing\) +DIFFERENT`)
	if code == 0 || demoIdentical.MatchString(out) || !missing.MatchString(out) {
		t.Fatalf("demo.sh with the DROP replayed: exit %d, want a failed comparison naming shop.orders missing:\n%s", code, out)
	}
}
