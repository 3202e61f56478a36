package main

import (
	"context"
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/verify"
	"github.com/rs/zerolog"
)

type verifyCmd struct {
	storeFlags
	Snapshot string `placeholder:"ID" help:"Check only this snapshot (binarc ls lists them). Without it, the whole archive is checked."`
	archiveVerifyFlags
	identityFlags
	trustFlags
}

// Run re-reads the snapshot and prints each check; a failed check is an
// error (exit 1) that names it. Without --snapshot it checks the whole
// archive (verify_archive.go).
func (c *verifyCmd) Run(ctx context.Context, log zerolog.Logger) error {
	store, layout, err := c.storeFlags.open(ctx)
	if err != nil {
		return err
	}
	opener, err := c.identityFlags.opener(log)
	if err != nil {
		return err
	}
	trust, err := c.trustFlags.trust()
	if err != nil {
		return err
	}
	if c.Snapshot == "" {
		return c.verifyArchive(ctx, archive.Catalog{Store: store, Layout: layout, Opener: opener, Trust: trust})
	}
	checks, err := verify.SnapshotWith(ctx, store, layout, c.Snapshot, opener, trust)
	tw := tabwriter.NewWriter(os.Stdout, 2, 4, 2, ' ', 0)
	for _, ch := range checks {
		state := "ok"
		if !ch.OK {
			state = "FAILED"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", state, ch.What, ch.Note)
	}
	tw.Flush()
	if err != nil {
		return err
	}
	fmt.Printf("snapshot %s verified\n", c.Snapshot)
	return nil
}
