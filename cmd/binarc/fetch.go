package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/archive/fetch"
	"github.com/rs/zerolog"
)

type fetchCmd struct {
	storeFlags
	Dir string `required:"" type:"path" help:"Directory to write the rebuilt files into (created if missing; existing files are not overwritten)."`
	identityFlags
	trustFlags
	Timeline string   `help:"Timeline to fetch from (default: the one holding the named files; a name several timelines hold is refused; with no names, the newest)."`
	Files    []string `arg:"" optional:"" name:"FILE" help:"Binlog files to fetch (default: every file of the timeline)."`
}

func (c *fetchCmd) Run(ctx context.Context, log zerolog.Logger) error {
	cat, err := readingCatalog(ctx, c.storeFlags, c.trustFlags, c.identityFlags, log)
	if err != nil {
		return err
	}
	_, err = fetch.Files(ctx, cat, fetch.Request{Dir: c.Dir, Timeline: c.Timeline, Files: c.Files, Fetched: func(f fetch.File) {
		if f.Gap != nil {
			log.Warn().Str("file", f.File).Int64("durable_bytes", f.Bytes).Msgf("fetched the file up to its first hole: %v (segments past it were never durable: an upload was unfinished when the archiver stopped)", f.Gap)
		}
		log.Info().Str("file", f.Path).Int64("bytes", f.Bytes).Bool("complete", f.Complete).Msg("fetched")
	}})
	return usageIfRequest(err)
}

// usageIfRequest makes a library's bad-request error (archive.ErrRequest)
// a usage error: exit status 2.
func usageIfRequest(err error) error {
	if errors.Is(err, archive.ErrRequest) {
		return usageError{err}
	}
	return err
}

func errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }
