package main

import (
	"fmt"
	"syscall"
	"time"

	"filippo.io/age"
	"github.com/binarc/binarc/internal/testenv"
)

// encCluster is the cluster the encrypted binarc archives into, beside
// the plain one, in the same bucket.
const encCluster = "bench-encrypted"

// targetEncryptedRatio is the least catch-up throughput with encryption,
// as a share of the plain catch-up in the same run.
const targetEncryptedRatio = 0.9

// streamRun is a binarc stream the bench keeps running: its process, its
// archive watch and its log.
type streamRun struct {
	bin    *testenv.Process
	watch  *archiveWatch
	binLog string
}

// encryptedResults compare the encrypted stream with the plain one.
type encryptedResults struct {
	Recipient  string           `json:"recipient"`
	CatchUp    catchUpResult    `json:"catch_up"`
	LossWindow lossWindowResult `json:"loss_window"`
	// PlainAgain is a second plain catch-up, after the encrypted one, so
	// that the order of the runs does not favour either.
	PlainAgain catchUpResult `json:"plain_again"`
	// Ratio is the encrypted catch-up's MiB/s over the mean of the two
	// plain ones'; CPURatio its CPU per MiB over theirs.
	Ratio    float64 `json:"ratio_to_plain"`
	CPURatio float64 `json:"cpu_per_mib_ratio_to_plain"`
}

// catchUpEncrypted archives the same backlog again with a second binarc
// stream, into another cluster, with --encrypt-to a key made for the run.
// The plain binarc is caught up and idle by then. The encrypted binarc
// keeps running through both loss windows, as the plain one does.
func (b *bench) catchUpEncrypted() error {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		return err
	}
	plain := streamRun{bin: b.bin, watch: b.watch, binLog: b.binLog}
	plainResult := b.r.CatchUp
	b.stream.cluster = encCluster
	// A server_id of its own: two replicas with one id make the primary
	// drop the older connection each time the other connects.
	b.stream.args = append(append([]string(nil), b.opts.binarcArgs...), "--encrypt-to", id.Recipient().String(), "--server-id", "4208")
	logf("binarc stream with --encrypt-to: catching up on the same backlog")
	err = b.catchUp()
	enc := &streamRun{bin: b.bin, watch: b.watch, binLog: b.binLog}
	b.bin, b.watch, b.binLog = plain.bin, plain.watch, plain.binLog
	if err != nil {
		return fmt.Errorf("encrypted: %w", err)
	}
	b.enc = enc
	e := &encryptedResults{Recipient: id.Recipient().String(), CatchUp: b.r.CatchUp}

	// The plain catch-up again, into a third cluster; that binarc stops
	// right after, so the loss windows see the same two as before.
	b.stream.cluster = encCluster + "-plain-again"
	b.stream.args = append(append([]string(nil), b.opts.binarcArgs...), "--server-id", "4209")
	logf("binarc stream, plain again: catching up on the same backlog")
	err = b.catchUp()
	again := b.bin
	b.bin, b.watch, b.binLog = plain.bin, plain.watch, plain.binLog
	if err != nil {
		return fmt.Errorf("plain again: %w", err)
	}
	if err := again.Stop(syscall.SIGTERM, time.Minute); err != nil {
		return fmt.Errorf("plain again: binarc did not stop: %w", err)
	}
	e.PlainAgain = b.r.CatchUp
	b.r.CatchUp = plainResult
	meanMiBps := (plainResult.MiBps + e.PlainAgain.MiBps) / 2
	meanCPU := (plainResult.CPUmsPerMiB + e.PlainAgain.CPUmsPerMiB) / 2
	e.Ratio = e.CatchUp.MiBps / meanMiBps
	e.CPURatio = e.CatchUp.CPUmsPerMiB / meanCPU
	b.r.Encrypted = e
	logf("encrypted catch-up: %.1f MiB/s against %.1f and %.1f plain; %.1f ms CPU per MiB against %.1f and %.1f: ratio %.2f of the plain throughput, %.2f of its CPU per MiB",
		e.CatchUp.MiBps, plainResult.MiBps, e.PlainAgain.MiBps, e.CatchUp.CPUmsPerMiB, plainResult.CPUmsPerMiB, e.PlainAgain.CPUmsPerMiB, e.Ratio, e.CPURatio)
	return nil
}

// lossWindowEncrypted runs the steady load, timing the encrypted binarc's
// archive (the plain binarc archives it too), and stops the encrypted
// binarc; lossWindow then runs it again for the plain one alone.
func (b *bench) lossWindowEncrypted() error {
	plain := streamRun{bin: b.bin, watch: b.watch, binLog: b.binLog}
	b.bin, b.watch, b.binLog = b.enc.bin, b.enc.watch, b.enc.binLog
	logf("steady load, timing the encrypted binarc")
	err := b.lossWindow()
	b.bin, b.watch, b.binLog = plain.bin, plain.watch, plain.binLog
	if err != nil {
		return fmt.Errorf("encrypted: %w", err)
	}
	b.r.Encrypted.LossWindow = b.r.LossWindow
	b.r.LossWindow = lossWindowResult{}
	return nil
}

// rows are the encrypted run's lines of the report; none without it.
func (e *encryptedResults) rows(plain *catchUpResult) [][]string {
	if e == nil {
		return nil
	}
	c, l := &e.CatchUp, &e.LossWindow
	return [][]string{
		{"binarc catch-up with --encrypt-to (age)", fmt.Sprintf("%.1f MiB/s (%.2f s); plain %.1f MiB/s before it and %.1f MiB/s after it", c.MiBps, c.Seconds, plain.MiBps, e.PlainAgain.MiBps), "", ""},
		{"ratio encrypted / plain catch-up (mean of the two plain)", fmt.Sprintf("%.2f", e.Ratio), fmt.Sprintf(">= %.1f", targetEncryptedRatio), pass(e.Ratio >= targetEncryptedRatio)},
		{"binarc CPU per MiB, encrypted / plain", fmt.Sprintf("%.1f ms / %.1f and %.1f ms = %.2f", c.CPUmsPerMiB, plain.CPUmsPerMiB, e.PlainAgain.CPUmsPerMiB, e.CPURatio), "", ""},
		{"stored bytes, encrypted", fmt.Sprintf("%s in %d segments (plain %s)", mib(uint64(c.StoredBytes)), c.Segments, mib(uint64(plain.StoredBytes))), "", ""},
		{"loss window p50 / p99 with encryption", fmt.Sprintf("%.0f ms / %.0f ms (%d of %d samples archived)", l.P50ms, l.P99ms, l.Archived, l.Samples), fmt.Sprintf("<= %d ms", targetP99ms), pass(l.P99ms <= targetP99ms && l.Archived == l.Samples && l.Samples > 0)},
	}
}
