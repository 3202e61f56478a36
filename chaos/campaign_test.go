package chaos

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// campaignDuration is how long each CI seed injects faults; the issue asks
// for about three minutes. BINARC_CHAOS_DURATION shortens it for a quick
// local run.
func campaignDuration(t *testing.T) time.Duration {
	if s := os.Getenv("BINARC_CHAOS_DURATION"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("BINARC_CHAOS_DURATION: %v", err)
		}
		return d
	}
	return 3 * time.Minute
}

// buildBinarc builds binarc without the race detector: check 5 bounds its
// resident memory, which the race detector's shadow memory multiplies.
func buildBinarc(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "binarc")
	out, err := exec.Command("go", "build", "-o", path, "../cmd/binarc").CombinedOutput()
	if err != nil {
		t.Fatalf("build binarc: %v\n%s", err, out)
	}
	return path
}

// TestCampaign runs three fixed seeds of the fault campaign against real
// servers (MariaDB 10.11 A⇄B and R, versitygw behind the fault proxy), and
// a fourth under binarc stream --semi-sync, where no acknowledged
// transaction may be lost; one of the three logs statements
// (binlog_format MIXED). Every check of the independent checker must hold
// for each. A failing seed's report names the seed; make chaos SEED=…
// reruns its schedule.
func TestCampaign(t *testing.T) {
	t.Parallel()
	binarc := buildBinarc(t)
	t.Run("scripted/rebuild-from-archive", func(t *testing.T) {
		t.Parallel()
		testRebuildFromArchive(t, binarc)
	})
	for _, run := range []struct {
		seed     uint64
		semiSync bool
		// format: the servers' binlog_format ("": ROW). Seed 22 logs
		// statements, as MariaDB's default MIXED does for its workload.
		format string
	}{{11, false, ""}, {22, false, "MIXED"}, {33, false, ""}, {44, true, ""}} {
		seed, name := run.seed, "seed="+itoa(int(run.seed))
		if run.semiSync {
			name += "/semi-sync"
		}
		if run.format != "" {
			name += "/" + run.format
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := campaignDir(t)
			cfg := Config{Seed: seed, Duration: campaignDuration(t), Dir: dir, Binarc: binarc,
				Restores: 3, Writers: 2, SemiSync: run.semiSync, BinlogFormat: run.format, Log: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)}
			if seed == 11 {
				// One seed ends with the checker's self-test on its
				// own archive, forged (selftest_test.go).
				cfg.afterCheck = selfTest(t)
			}
			runPassing(t, cfg)
			os.RemoveAll(dir)
		})
	}
}

// campaignDir is a fresh directory for one campaign's servers and logs.
func campaignDir(t *testing.T) string {
	dir, err := os.MkdirTemp("", "binarc-chaos-")
	if err != nil {
		t.Fatal(err)
	}
	// The restore runs its programs as mysql, which must reach the
	// restored datadirs below dir.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// runPassing runs a campaign and fails t with its report unless every
// check held.
func runPassing(t *testing.T, cfg Config) *Report {
	t.Helper()
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatalf("seed %d: the campaign could not run: %v (servers and logs in %s)", cfg.Seed, err, cfg.Dir)
	}
	path, _ := rep.Save()
	var text strings.Builder
	rep.WriteText(&text)
	if !rep.Passed() {
		t.Fatalf("seed %d failed (logs in %s, report %s):\n%s", cfg.Seed, cfg.Dir, path, text.String())
	}
	t.Logf("%s", text.String())
	return rep
}

// testRebuildFromArchive is a scripted campaign: A's binlog is purged
// while it is writable, B then loses a hard flip, and the next flip
// rebuilds B from A: A's binlog no longer starts at the beginning, so the
// new B is binarc restore --to latest, replicating from A from the
// restored GTID on (the operators' way when a replica is lost and the
// primary purged). The rebuilt B then takes the writes; every check holds,
// and the restores include a checkpoint on the rebuilt server.
func testRebuildFromArchive(t *testing.T, binarc string) {
	dir := campaignDir(t)
	steps := []Step{
		{At: 2 * time.Second, Kind: Snapshot},
		{At: 4 * time.Second, Kind: Pause},
		{At: 12 * time.Second, Kind: Purge},
		{At: 14 * time.Second, Kind: FlipClean, For: time.Second},    // A → B
		{At: 18 * time.Second, Kind: FlipHard, For: 2 * time.Second}, // B killed, A writable
		{At: 24 * time.Second, Kind: Pause},
		{At: 26 * time.Second, Kind: FlipClean, For: time.Second}, // B rebuilt from the archive
		{At: 32 * time.Second, Kind: FlipClean, For: time.Second}, // A → B
		{At: 38 * time.Second, Kind: Pause},
		{At: 42 * time.Second, Kind: Pause},
	}
	rep := runPassing(t, Config{Seed: 7, Duration: 45 * time.Second, Dir: dir, Binarc: binarc, Schedule: steps,
		Restores: 3, Writers: 2, Log: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)})
	var did []string
	for _, f := range rep.Faults {
		did = append(did, fmt.Sprintf("%s: %s%s", f.Kind, f.Detail, f.Error))
	}
	for step, want := range map[int]string{2: "purged A's binlogs", 3: "A → B", 4: "B killed",
		6: "rebuilt B (lost at a hard flip) instead, from binarc restore --to latest", 7: "A → B"} {
		if !strings.Contains(did[step], want) {
			t.Fatalf("step %d did %q, want %q; the steps:\n%s", step, did[step], want, strings.Join(did, "\n"))
		}
	}
	os.RemoveAll(dir)
}
