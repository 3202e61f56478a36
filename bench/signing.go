package main

import (
	"fmt"
	"path/filepath"
	"syscall"
	"time"

	"github.com/binarc/binarc/archive/sign"
)

// signCluster is the cluster the signing binarc archives into, beside the
// plain one, in the same bucket.
const signCluster = "bench-signed"

// targetSignedRatio is the least catch-up throughput with --sign-key, as
// a share of the plain catch-up in the same run (issue 19).
const targetSignedRatio = 0.95

// signedResults compare the signing stream's catch-up with the plain one.
type signedResults struct {
	PublicKey string        `json:"public_key"`
	CatchUp   catchUpResult `json:"catch_up"`
	// PlainAgain is a second plain catch-up, after the signed one, and
	// SignedAgain a second signed one after it: plain, signed, plain,
	// signed, so that neither the order nor a burst of load elsewhere on
	// the machine favours either.
	PlainAgain  catchUpResult `json:"plain_again"`
	SignedAgain catchUpResult `json:"signed_again"`
	// Ratio is the mean of the signed catch-ups' MiB/s over the mean of
	// the plain ones'; CPURatio the same for CPU per MiB.
	Ratio    float64 `json:"ratio_to_plain"`
	CPURatio float64 `json:"cpu_per_mib_ratio_to_plain"`
}

// catchUpSigned archives the same backlog again with a second binarc
// stream, into another cluster, with --sign-key a key made for the run,
// then a plain one and a signed one again; each stops once caught up. The
// plain binarc of the run is caught up and idle meanwhile.
func (b *bench) catchUpSigned() error {
	keyFile := filepath.Join(b.tmp, "sign.pem")
	signer, err := sign.GenerateSigner(keyFile)
	if err != nil {
		return err
	}
	plainResult := b.r.CatchUp
	res := &signedResults{PublicKey: signer.PublicKey()}
	for _, run := range []struct {
		what, cluster, serverID string
		extra                   []string
		into                    *catchUpResult
	}{
		{"with --sign-key", signCluster, "4210", []string{"--sign-key", keyFile}, &res.CatchUp},
		{"plain again", signCluster + "-plain-again", "4211", nil, &res.PlainAgain},
		{"with --sign-key again", signCluster + "-again", "4212", []string{"--sign-key", keyFile}, &res.SignedAgain},
	} {
		if err := b.catchUpAside(run.what, run.cluster, run.serverID, run.extra); err != nil {
			return err
		}
		*run.into = b.r.CatchUp
	}
	b.r.CatchUp = plainResult
	res.Ratio = (res.CatchUp.MiBps + res.SignedAgain.MiBps) / (plainResult.MiBps + res.PlainAgain.MiBps)
	res.CPURatio = (res.CatchUp.CPUmsPerMiB + res.SignedAgain.CPUmsPerMiB) / (plainResult.CPUmsPerMiB + res.PlainAgain.CPUmsPerMiB)
	b.r.Signed = res
	logf("signed catch-ups: %.1f and %.1f MiB/s against %.1f and %.1f plain; %.1f and %.1f ms CPU per MiB against %.1f and %.1f: ratio %.2f of the plain throughput, %.2f of its CPU per MiB",
		res.CatchUp.MiBps, res.SignedAgain.MiBps, plainResult.MiBps, res.PlainAgain.MiBps,
		res.CatchUp.CPUmsPerMiB, res.SignedAgain.CPUmsPerMiB, plainResult.CPUmsPerMiB, res.PlainAgain.CPUmsPerMiB, res.Ratio, res.CPURatio)
	return nil
}

// catchUpAside runs one more binarc stream over the backlog into cluster,
// with a server_id of its own (two replicas with one id make the primary
// drop the older connection), stops it, and leaves the run's plain binarc
// as the current one.
func (b *bench) catchUpAside(what, cluster, serverID string, extra []string) error {
	plain := streamRun{bin: b.bin, watch: b.watch, binLog: b.binLog}
	b.stream.cluster = cluster
	b.stream.args = append(append(append([]string(nil), b.opts.binarcArgs...), extra...), "--server-id", serverID)
	logf("binarc stream %s: catching up on the same backlog", what)
	err := b.catchUp()
	aside := b.bin
	b.bin, b.watch, b.binLog = plain.bin, plain.watch, plain.binLog
	b.stream.cluster, b.stream.args = "", nil
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if err := aside.Stop(syscall.SIGTERM, time.Minute); err != nil {
		return fmt.Errorf("%s: binarc did not stop: %w", what, err)
	}
	return nil
}

// rows are the signed run's lines of the report; none without it.
func (s *signedResults) rows(plain *catchUpResult) [][]string {
	if s == nil {
		return nil
	}
	c := &s.CatchUp
	return [][]string{
		{"binarc catch-up with --sign-key (ed25519), run 2nd and 4th", fmt.Sprintf("%.1f and %.1f MiB/s; plain %.1f (1st) and %.1f MiB/s (3rd)", c.MiBps, s.SignedAgain.MiBps, plain.MiBps, s.PlainAgain.MiBps), "", ""},
		{"ratio signed / plain catch-up (means of two each)", fmt.Sprintf("%.2f", s.Ratio), fmt.Sprintf(">= %.2f", targetSignedRatio), pass(s.Ratio >= targetSignedRatio)},
		{"binarc CPU per MiB, signed / plain", fmt.Sprintf("%.1f and %.1f ms / %.1f and %.1f ms = %.2f", c.CPUmsPerMiB, s.SignedAgain.CPUmsPerMiB, plain.CPUmsPerMiB, s.PlainAgain.CPUmsPerMiB, s.CPURatio), "", ""},
		{"stored bytes, signed", fmt.Sprintf("%s in %d segments (plain %s)", mib(uint64(c.StoredBytes)), c.Segments, mib(uint64(plain.StoredBytes))), "", ""},
	}
}
