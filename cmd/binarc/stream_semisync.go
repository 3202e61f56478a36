package main

import (
	"time"

	"github.com/binarc/binarc/stream"
)

// semiSyncFlags are binarc stream's zero-loss mode.
type semiSyncFlags struct {
	SemiSync           bool   `env:"BINARC_SEMI_SYNC" help:"Register as a semi-synchronous replica and acknowledge each transaction only once it is durable (see --semi-sync-durability): with rpl_semi_sync_master_wait_point=AFTER_SYNC on the primary, no acknowledged commit is lost when the primary dies."`
	SemiSyncDurability string `env:"BINARC_SEMI_SYNC_DURABILITY" default:"store" enum:"store,local" help:"With --semi-sync, acknowledge once the segment holding the commit is in the store (store), or fsynced to --spool-dir (local; the spool is uploaded as usual and replayed into the store at the next start after a crash)."`
	SpoolDir           string `env:"BINARC_SPOOL_DIR" type:"path" placeholder:"DIR" help:"Local directory for --semi-sync-durability local, on a disk that survives a restart of binarc."`
}

func (f semiSyncFlags) config(acked func(time.Duration)) (stream.SemiSyncConfig, error) {
	if !f.SemiSync && (f.SpoolDir != "" || f.SemiSyncDurability != stream.DurabilityStore) {
		return stream.SemiSyncConfig{}, usageError{errorf("--semi-sync-durability and --spool-dir only apply with --semi-sync")}
	}
	if f.SemiSync && f.SemiSyncDurability == stream.DurabilityStore && f.SpoolDir != "" {
		return stream.SemiSyncConfig{}, usageError{errorf("--spool-dir is only used with --semi-sync-durability local")}
	}
	return stream.SemiSyncConfig{Enabled: f.SemiSync, Durability: f.SemiSyncDurability, SpoolDir: f.SpoolDir, Acked: acked}, nil
}
