package main

import (
	"strings"
	"testing"

	"github.com/binarc/binarc/stream"
)

func TestSemiSyncFlagsBounds(t *testing.T) {
	base := semiSyncFlags{SemiSync: true, SemiSyncDurability: stream.DurabilityStore, SemiSyncInflight: stream.DefaultSemiSyncInflight}
	cfg, err := base.config(nil)
	if err != nil || cfg.Inflight != stream.DefaultSemiSyncInflight || cfg.MaxPuts != 0 {
		t.Fatalf("defaults: %+v, %v", cfg, err)
	}
	for _, c := range []struct {
		f    func(*semiSyncFlags)
		want string
	}{
		{func(f *semiSyncFlags) { f.SemiSyncInflight = 0 }, "--semi-sync-inflight 0: use 1 to 64"},
		{func(f *semiSyncFlags) { f.SemiSyncMaxPuts = -1 }, "--semi-sync-max-puts -1"},
		{func(f *semiSyncFlags) { f.SemiSync = false; f.SemiSyncMaxPuts = 5 }, "only apply with --semi-sync"},
	} {
		f := base
		c.f(&f)
		if _, err := f.config(nil); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("flags %+v: error %v, want one naming %q", f, err, c.want)
		}
	}
	f := base
	f.SemiSyncMaxPuts = 20
	if cfg, err := f.config(nil); err != nil || cfg.MaxPuts != 20 {
		t.Fatalf("--semi-sync-max-puts 20: %+v, %v", cfg, err)
	}
}
