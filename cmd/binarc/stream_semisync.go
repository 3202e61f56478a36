package main

import (
	"time"

	"github.com/binarc/binarc/stream"
)

// semiSyncFlags are binarc stream's zero-loss mode.
type semiSyncFlags struct {
	SemiSync           bool    `env:"BINARC_SEMI_SYNC" help:"Register as a semi-synchronous replica and acknowledge each transaction only once it is durable (see --semi-sync-durability): with rpl_semi_sync_master_wait_point=AFTER_SYNC on the primary, no acknowledged commit is lost when the primary dies."`
	SemiSyncDurability string  `env:"BINARC_SEMI_SYNC_DURABILITY" default:"store" enum:"store,local" help:"With --semi-sync, acknowledge once the segment holding the commit is in the store (store), or fsynced to --spool-dir (local; the spool is uploaded as usual and replayed into the store at the next start after a crash)."`
	SpoolDir           string  `env:"BINARC_SPOOL_DIR" type:"path" placeholder:"DIR" help:"Local directory for --semi-sync-durability local, on a disk that survives a restart of binarc."`
	SemiSyncInflight   int     `env:"BINARC_SEMI_SYNC_INFLIGHT" default:"16" help:"With --semi-sync store, commit groups sealed and uploading at once: a group's PUT starts while earlier ones are in flight; acknowledgements still go out in binlog order. Fewer: fewer PUTs, and commits wait for a free slot."`
	SemiSyncMaxPuts    float64 `env:"BINARC_SEMI_SYNC_MAX_PUTS" default:"0" help:"With --semi-sync, at most this many commit groups sealed (PUTs) per second, so a busy primary's request bill is bounded; commits arriving in between join the next group and wait longer. 0: no bound (one PUT per group, as fast as the store answers)."`
}

func (f semiSyncFlags) config(acked func(time.Duration)) (stream.SemiSyncConfig, error) {
	if !f.SemiSync && (f.SpoolDir != "" || f.SemiSyncDurability != stream.DurabilityStore || f.SemiSyncMaxPuts != 0 || f.SemiSyncInflight != stream.DefaultSemiSyncInflight) {
		return stream.SemiSyncConfig{}, usageError{errorf("--semi-sync-durability, --spool-dir, --semi-sync-inflight and --semi-sync-max-puts only apply with --semi-sync")}
	}
	if f.SemiSyncInflight < 1 || f.SemiSyncInflight > 64 {
		return stream.SemiSyncConfig{}, usageError{errorf("--semi-sync-inflight %d: use 1 to 64", f.SemiSyncInflight)}
	}
	if f.SemiSyncMaxPuts < 0 {
		return stream.SemiSyncConfig{}, usageError{errorf("--semi-sync-max-puts %g: use 0 (no bound) or a positive rate per second", f.SemiSyncMaxPuts)}
	}
	if f.SemiSync && f.SemiSyncDurability == stream.DurabilityStore && f.SpoolDir != "" {
		return stream.SemiSyncConfig{}, usageError{errorf("--spool-dir is only used with --semi-sync-durability local")}
	}
	return stream.SemiSyncConfig{Enabled: f.SemiSync, Durability: f.SemiSyncDurability, SpoolDir: f.SpoolDir, Acked: acked,
		Inflight: f.SemiSyncInflight, MaxPuts: f.SemiSyncMaxPuts}, nil
}
