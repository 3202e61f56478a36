package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/binarc/binarc/archive"
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
}

func (c *eventsCmd) Run(ctx context.Context, log zerolog.Logger) error {
	var from, to time.Time
	for _, x := range []struct {
		flag, val string
		dst       *time.Time
	}{{"--from", c.From, &from}, {"--to", c.To, &to}} {
		if x.val == "" {
			continue
		}
		t, err := restore.ParseTarget(x.val)
		if err != nil || t.Kind != restore.TargetTime {
			return usageError{fmt.Errorf("%s %q: give a time with its zone, e.g. 2026-11-20T13:45:00Z", x.flag, x.val)}
		}
		*x.dst = t.Time
	}
	cat, tl, files, err := c.storeFlags.openTimeline(ctx, c.Timeline)
	if err != nil {
		return err
	}
	if cat.Trust, err = c.trustFlags.trust(); err != nil {
		return err
	}
	if cat.Opener, err = c.identityFlags.opener(log); err != nil {
		return err
	}
	grep := strings.ToLower(c.Grep)
	fmt.Fprintf(os.Stderr, "timeline %s (positions below are in it; --timeline reads another)\n", tl)
	fmt.Fprintf(os.Stdout, "%-20s  %-24s  %-36s  %s\n", "TIME", "GTID", "POSITION", "WHAT")
	for _, f := range files {
		fs, err := cat.FileState(ctx, tl, f)
		if err != nil {
			return err
		}
		if (!to.IsZero() && fs.FirstEventTime.After(to)) || (!from.IsZero() && !fs.LastEventTime.IsZero() && fs.LastEventTime.Before(from)) {
			continue
		}
		err = archive.Transactions(ctx, cat, fs, func(t *archive.Transaction) bool {
			if (!from.IsZero() && t.Time.Before(from)) || (!to.IsZero() && t.Time.After(to)) {
				return true
			}
			what := t.Summary()
			if grep != "" && !strings.Contains(strings.ToLower(what+" "+strings.Join(t.Tables, " ")), grep) {
				return true
			}
			fmt.Fprintf(os.Stdout, "%-20s  %-24s  %-36s  %s\n", t.Time.Format("2006-01-02T15:04:05Z"), t.GTID,
				fmt.Sprintf("%s:%d-%d", t.File, t.Start, t.End), shorten(what, 200))
			return true
		})
		if err != nil {
			return err
		}
	}
	return nil
}
