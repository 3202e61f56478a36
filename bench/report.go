package main

import (
	"debug/buildinfo"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/binarc/binarc/internal/procfs"
)

// Results is what one run measured; it is written as JSON and printed as a
// Markdown table.
type Results struct {
	Machine struct {
		NumCPU         int    `json:"num_cpu"`
		CPUModel       string `json:"cpu_model"`
		Kernel         string `json:"kernel"`
		GoVersion      string `json:"go_version"`
		MariaDBVersion string `json:"mariadb_version"`
	} `json:"machine"`
	Config struct {
		Quick            bool    `json:"quick"`
		BacklogMiB       int     `json:"backlog_mib"`
		MaxBinlogSizeMiB int     `json:"max_binlog_size_mib"`
		LoadSeconds      float64 `json:"load_seconds"`
		LoadRate         int     `json:"load_rate_per_second"`
		SampleEvery      int     `json:"sample_every"`
		BinarcArgs       string  `json:"binarc_args"`
		BinarcRevision   string  `json:"binarc_revision"`
	} `json:"config"`

	Backlog struct {
		Files           []binlogFile `json:"files"`
		Bytes           uint64       `json:"bytes"`
		GenerateSeconds float64      `json:"generate_seconds"`
	} `json:"backlog"`

	// MariadbBinlog is the median of Runs, by time.
	MariadbBinlog struct {
		mariadbBinlogRun
		Runs []mariadbBinlogRun `json:"runs"`
	} `json:"mariadb_binlog"`

	CatchUp catchUpResult `json:"catch_up"`

	LossWindow lossWindowResult `json:"loss_window"`

	// Encrypted is the catch-up and loss window of a second binarc
	// stream with --encrypt-to, in the same run (-encrypt).
	Encrypted *encryptedResults `json:"encrypted,omitempty"`

	// Signed is the catch-up of a binarc stream with --sign-key, in the
	// same run (-sign).
	Signed *signedResults `json:"signed,omitempty"`

	Replay replayResults `json:"replay"`
	Backup backupResults `json:"snapshot"`

	PeakRSSEndMiB float64 `json:"peak_rss_end_mib"`
	TotalSeconds  float64 `json:"total_seconds"`
	// OtherCPUSeconds is the CPU time the rest of the machine used during
	// the run: anything much above zero makes the numbers noisier.
	OtherCPUSeconds float64 `json:"other_cpu_seconds"`
}

// catchUpResult is one binarc stream catching up with the backlog.
type catchUpResult struct {
	Seconds float64 `json:"seconds"`
	MiBps   float64 `json:"mib_per_second"`
	// SteadyMiBps is the rate between 10 % and 90 % of the bytes
	// archived: without start-up and the last segment's flush delay.
	SteadyMiBps float64 `json:"steady_mib_per_second"`
	// LastStepSeconds is the wait between the last two progress points:
	// the last partial segment is sealed by the flush interval, not
	// when binarc has caught up.
	LastStepSeconds   float64         `json:"last_step_seconds"`
	RatioToMariadbBin float64         `json:"ratio_to_mariadb_binlog"`
	CPUSeconds        float64         `json:"cpu_seconds"`
	CPUmsPerMiB       float64         `json:"cpu_ms_per_mib"`
	PeakRSSMiB        float64         `json:"peak_rss_mib"`
	StoredBytes       int64           `json:"stored_bytes"`
	Segments          int             `json:"segments"`
	CompressionRatio  float64         `json:"compression_ratio"`
	ServerCPUSeconds  float64         `json:"server_cpu_seconds"`
	S3CPUSeconds      float64         `json:"s3_cpu_seconds"`
	Progress          []progressPoint `json:"progress"`
}

// lossWindowResult is the loss window under the steady load.
type lossWindowResult struct {
	Commits       int     `json:"commits"`
	CommitsPerSec float64 `json:"commits_per_second"`
	Samples       int     `json:"samples"`
	Archived      int     `json:"archived"`
	P50ms         float64 `json:"p50_ms"`
	P90ms         float64 `json:"p90_ms"`
	P99ms         float64 `json:"p99_ms"`
	Maxms         float64 `json:"max_ms"`
	MinMs         float64 `json:"min_ms"`
	// BinarcCPUPercent is binarc's CPU use during the load, in % of
	// one core.
	BinarcCPUPercent float64 `json:"binarc_cpu_percent"`
}

func newResults(o options) *Results {
	r := &Results{}
	r.Machine.NumCPU = runtime.NumCPU()
	r.Machine.CPUModel = procfs.CPUModel()
	r.Machine.Kernel = procfs.KernelRelease()
	r.Machine.GoVersion = runtime.Version()
	r.Config.Quick = o.quick
	r.Config.BacklogMiB = o.backlogMiB
	r.Config.MaxBinlogSizeMiB = o.maxBinlogMiB
	r.Config.LoadSeconds = o.loadDuration.Seconds()
	r.Config.LoadRate = o.loadRate
	r.Config.SampleEvery = o.sampleEvery
	r.Config.BinarcArgs = "defaults (--flush-interval 1s, --segment-size 16MiB, --upload-concurrency 4, --max-buffer 32MiB)"
	if len(o.binarcArgs) > 0 {
		r.Config.BinarcArgs = "defaults but " + strings.Join(o.binarcArgs, " ")
	}

	return r
}

// mariadbBinlogRun is one run of mariadb-binlog over the backlog.
type mariadbBinlogRun struct {
	Seconds    float64 `json:"seconds"`
	MiBps      float64 `json:"mib_per_second"`
	CPUSeconds float64 `json:"cpu_seconds"`
	// ServerCPUSeconds is mariadbd's CPU time during the dump.
	ServerCPUSeconds float64 `json:"server_cpu_seconds"`
}

// Targets.
const (
	targetRatio        = 1.0
	targetP99ms        = 1500
	targetPeakRSSMiB   = 100
	pollIntervalLossMS = 20
)

// writeTable writes rows as a Markdown table, the first row its header.
func writeTable(w io.Writer, rows [][]string) {
	for i, row := range rows {
		fmt.Fprintf(w, "| %s |\n", strings.Join(row, " | "))
		if i == 0 {
			fmt.Fprintln(w, "|"+strings.Repeat("---|", len(row)))
		}
	}
}

func pass(ok bool) string {
	if ok {
		return "yes"
	}
	return "**NO**"
}

func (r *Results) writeMarkdown(w io.Writer) {
	c := &r.CatchUp
	m := &r.MariadbBinlog
	l := &r.LossWindow
	fmt.Fprintf(w, "binarc bench: %d CPUs (%s), Linux %s, %s, MariaDB %s; total run %.0f s, during which other processes used %.0f CPU-s (%.0f %% of the machine)\n\n",
		r.Machine.NumCPU, r.Machine.CPUModel, r.Machine.Kernel, r.Machine.GoVersion, r.Machine.MariaDBVersion, r.TotalSeconds,
		r.OtherCPUSeconds, 100*r.OtherCPUSeconds/(r.TotalSeconds*float64(r.Machine.NumCPU)))
	fmt.Fprintf(w, "Backlog: %s in %d binlog files (max_binlog_size %d MiB), written in %.1f s. binarc %s, %s.\n\n",
		mib(r.Backlog.Bytes), len(r.Backlog.Files), r.Config.MaxBinlogSizeMiB, r.Backlog.GenerateSeconds, r.Config.BinarcRevision, r.Config.BinarcArgs)
	rows := [][]string{
		{"Metric", "Value", "Target", "Met"},
		{"mariadb-binlog --raw to local disk (median of 3)", fmt.Sprintf("%.1f MiB/s (%.2f s, %.2f CPU-s; mariadbd %.2f CPU-s; runs %s)", m.MiBps, m.Seconds, m.CPUSeconds, m.ServerCPUSeconds, runSpeeds(m.Runs)), "", ""},
		{"binarc catch-up to S3 (every byte stored)", fmt.Sprintf("%.1f MiB/s (%.2f s, the last %.2f s for the final partial segment)", c.MiBps, c.Seconds, c.LastStepSeconds), "", ""},
		{"binarc catch-up, 10–90 % of bytes", fmt.Sprintf("%.1f MiB/s", c.SteadyMiBps), "", ""},
		{"ratio binarc / mariadb-binlog", fmt.Sprintf("%.2f", c.RatioToMariadbBin), fmt.Sprintf(">= %.1f", targetRatio), pass(c.RatioToMariadbBin >= targetRatio)},
		{"stored (zstd) / binlog bytes", fmt.Sprintf("%s / %s = 1 : %.2f in %d segments", mib(uint64(c.StoredBytes)), mib(r.Backlog.Bytes), c.CompressionRatio, c.Segments), "", ""},
		{"binarc CPU per MiB archived", fmt.Sprintf("%.1f ms (%.2f CPU-s; mariadbd %.2f, versitygw %.2f CPU-s)", c.CPUmsPerMiB, c.CPUSeconds, c.ServerCPUSeconds, c.S3CPUSeconds), "", ""},
		{"binarc peak RSS (VmHWM) after catch-up", fmt.Sprintf("%.1f MiB", c.PeakRSSMiB), fmt.Sprintf("<= %d MiB", targetPeakRSSMiB), pass(c.PeakRSSMiB <= targetPeakRSSMiB)},
		{"binarc peak RSS (VmHWM) at the end", fmt.Sprintf("%.1f MiB", r.PeakRSSEndMiB), "", ""},
		{"steady load", fmt.Sprintf("%d commits in %.0f s (%.0f/s), %d sampled, %d archived", l.Commits, r.Config.LoadSeconds, l.CommitsPerSec, l.Samples, l.Archived), "", ""},
		{"loss window p50 / p90", fmt.Sprintf("%.0f ms / %.0f ms", l.P50ms, l.P90ms), "", ""},
		{"loss window p99", fmt.Sprintf("%.0f ms", l.P99ms), fmt.Sprintf("<= %d ms", targetP99ms), pass(l.P99ms <= targetP99ms && l.Archived == l.Samples && l.Samples > 0)},
		{"loss window min / max", fmt.Sprintf("%.0f ms / %.0f ms", l.MinMs, l.Maxms), "", ""},
		{"binarc CPU during steady load", fmt.Sprintf("%.1f %% of a core", l.BinarcCPUPercent), "", ""},
	}
	rows = append(rows, r.Encrypted.rows(c)...)
	rows = append(rows, r.Signed.rows(c)...)
	rows = append(rows, r.Replay.rows()...)
	if r.Backup.Binarc.Runs != nil {
		rows = append(rows, r.Backup.rows()...)
	}
	writeTable(w, rows)
	fmt.Fprintf(w, "\nLoss window: commit returned -> a LIST of the file's segment folder (every %d ms) shows a contiguous archive covering the position SHOW MASTER STATUS gave after the commit.\n", pollIntervalLossMS)
	r.Replay.method(w)
	if r.Backup.Binarc.Runs != nil {
		r.Backup.method(w)
	}
}

// revision is the VCS revision a Go binary was built from, from its build
// information, with "+dirty" for uncommitted changes.
func revision(binary string) string {
	info, err := buildinfo.ReadFile(binary)
	if err != nil {
		return "unknown revision"
	}
	var rev, dirty string
	for _, s := range info.Settings {
		switch {
		case s.Key == "vcs.revision":
			rev = s.Value[:min(12, len(s.Value))]
		case s.Key == "vcs.modified" && s.Value == "true":
			dirty = "+dirty"
		}
	}
	if rev == "" {
		return "unknown revision"
	}
	return rev + dirty
}

func runSpeeds(runs []mariadbBinlogRun) string {
	var s []string
	for _, r := range runs {
		s = append(s, fmt.Sprintf("%.0f", r.MiBps))
	}
	return strings.Join(s, ", ") + " MiB/s"
}

// resultsPath is where a measurement run on its own writes its results:
// beside -out, named after it (results-drill.json for -out results.json).
func (b *bench) resultsPath(name string) string {
	return strings.TrimSuffix(b.opts.out, ".json") + "-" + name + ".json"
}

// saveJSON writes a measurement's results as indented JSON and logs it.
func saveJSON(out string, v any) error {
	data, _ := json.MarshalIndent(v, "", "  ")
	if err := os.WriteFile(out, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", out, err)
	}
	logf("wrote %s", out)
	return nil
}

func (r *Results) writeJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
