package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/binarc/binarc/archive"
)

// timelineForFiles picks the timeline holding the named binlog files when
// --timeline is not given: a bare file name means nothing across timelines
// (two servers name their files alike), so a name several timelines hold
// is refused with the candidates listed. No names, or names no timeline
// holds: "" (the caller's default, the newest).
func timelineForFiles(ctx context.Context, f storeFlags, names []string) (string, error) {
	if len(names) == 0 {
		return "", nil
	}
	store, layout, err := f.open(ctx)
	if err != nil {
		return "", err
	}
	cat := archive.Catalog{Store: store, Layout: layout}
	tls, err := cat.Timelines(ctx)
	if err != nil || len(tls) < 2 {
		return "", err
	}
	holders := map[string][]string{}
	for _, tl := range tls {
		files, err := cat.Files(ctx, tl)
		if err != nil {
			return "", err
		}
		for _, fr := range files {
			holders[fr.Name] = append(holders[fr.Name], tl)
		}
	}
	pick := ""
	for _, n := range names {
		h := holders[n]
		switch {
		case len(h) > 1:
			return "", usageError{fmt.Errorf("binlog file %s is in %d timelines (%s): two servers named their files alike; give --timeline", n, len(h), strings.Join(h, ", "))}
		case len(h) == 1 && pick != "" && h[0] != pick:
			return "", usageError{fmt.Errorf("the files named are in different timelines (%s and %s): fetch them with one --timeline at a time", pick, h[0])}
		case len(h) == 1:
			pick = h[0]
		}
	}
	return pick, nil
}
