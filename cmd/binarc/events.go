package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/archive/fetch"
	"github.com/binarc/binarc/restore"
	"github.com/rs/zerolog"
)

type eventsCmd struct {
	storeFlags
	From string `help:"List transactions from this time (with its zone; default: the archive's start)."`
	To   string `help:"… up to this time (default: the archive's end)."`
	Grep string `help:"Only transactions whose statements or tables contain this text (case-insensitive)."`
	identityFlags
	trustFlags
	Timeline string `help:"Timeline to read (default: the newest)."`
	JSON     bool   `help:"Print one JSON object a line, one a transaction (schema: README, Automation: JSON output), instead of a table."`
}

func (c *eventsCmd) Run(ctx context.Context, log zerolog.Logger) error {
	filter := fetch.TransactionFilter{Grep: c.Grep}
	for _, x := range []struct {
		flag, val string
		dst       *time.Time
	}{{"--from", c.From, &filter.From}, {"--to", c.To, &filter.To}} {
		if x.val == "" {
			continue
		}
		t, err := restore.ParseTarget(x.val)
		if err != nil || t.Kind != restore.TargetTime {
			return usageError{fmt.Errorf("%s %q: give a time with its zone, e.g. 2026-11-20T13:45:00Z", x.flag, x.val)}
		}
		*x.dst = t.Time
	}
	cat, err := readingCatalog(ctx, c.storeFlags, c.trustFlags, c.identityFlags, log)
	if err != nil {
		return err
	}
	tl, err := cat.PickTimeline(ctx, c.Timeline)
	if err != nil {
		return usageIfRequest(err)
	}
	fmt.Fprintf(os.Stderr, "timeline %s (positions below are in it; --timeline reads another)\n", tl)
	if c.JSON {
		var werr error
		err := fetch.EachTransaction(ctx, cat, tl, filter, func(t *archive.Transaction) bool {
			werr = writeJSON(os.Stdout, txJSON(t))
			return werr == nil
		})
		return errors.Join(err, werr)
	}
	fmt.Fprintf(os.Stdout, "%-20s  %-24s  %-36s  %s\n", "TIME", "GTID", "POSITION", "WHAT")
	return fetch.EachTransaction(ctx, cat, tl, filter, func(t *archive.Transaction) bool {
		fmt.Fprintf(os.Stdout, "%-20s  %-24s  %-36s  %s\n", t.Time.Format("2006-01-02T15:04:05Z"), t.GTID,
			fmt.Sprintf("%s:%d-%d", t.File, t.Start, t.End), shorten(t.Summary(), 200))
		return true
	})
}
