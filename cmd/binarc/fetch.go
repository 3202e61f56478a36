package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/binarc/binarc/archive"
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
	if c.Timeline == "" {
		tl, err := timelineForFiles(ctx, c.storeFlags, c.Files)
		if err != nil {
			return err
		}
		c.Timeline = tl
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
	refs := map[string]archive.FileRef{}
	for _, f := range files {
		refs[f.Name] = f
	}
	want := c.Files
	if len(want) == 0 {
		for _, f := range files {
			want = append(want, f.Name)
		}
	}
	for _, name := range want {
		if _, ok := refs[name]; !ok {
			return usageError{fmt.Errorf("binlog file %q is not in timeline %s of cluster %q: see binarc ls", name, tl, c.Cluster)}
		}
	}
	if err := os.MkdirAll(c.Dir, 0o750); err != nil {
		return fmt.Errorf("--dir: %w", err)
	}
	for _, name := range want {
		dst := filepath.Join(c.Dir, name)
		if _, err := os.Stat(dst); err == nil {
			return fmt.Errorf("%s already exists: binarc does not overwrite files; remove it or choose another --dir", dst)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		st, err := cat.FileState(ctx, tl, refs[name])
		if err != nil {
			return err
		}
		if st.Gap != nil {
			log.Warn().Str("file", name).Uint64("durable_bytes", st.Size).Msgf("fetching the file up to its first hole: %v (segments past it were never durable: an upload was unfinished when the archiver stopped)", st.Gap)
		}
		n, err := writeFileAtomic(dst, func(f *os.File) (int64, error) { return cat.Rebuild(ctx, st, f) })
		if err != nil {
			return fmt.Errorf("fetch %s: %w", name, err)
		}
		log.Info().Str("file", dst).Int64("bytes", n).Bool("complete", st.Complete).Msg("fetched")
	}
	return nil
}

// writeFileAtomic writes dst through a temporary file, fsyncs, and renames,
// so a failed fetch leaves no partial file under the real name.
func writeFileAtomic(dst string, write func(*os.File) (int64, error)) (int64, error) {
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".tmp-*")
	if err != nil {
		return 0, err
	}
	defer os.Remove(tmp.Name())
	n, err := write(tmp)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), dst)
	}
	return n, err
}

// openTimeline opens the store and lists the files of the named timeline,
// or of the newest.
func (f storeFlags) openTimeline(ctx context.Context, name string) (archive.Catalog, string, []archive.FileRef, error) {
	store, layout, err := f.open(ctx)
	if err != nil {
		return archive.Catalog{}, "", nil, err
	}
	cat := archive.Catalog{Store: store, Layout: layout}
	tl, err := pickTimeline(ctx, cat, name)
	if err != nil {
		return cat, "", nil, err
	}
	files, err := cat.Files(ctx, tl)
	return cat, tl, files, err
}

// pickTimeline returns the named timeline, or the newest.
func pickTimeline(ctx context.Context, cat archive.Catalog, name string) (string, error) {
	tls, err := cat.Timelines(ctx)
	if err != nil {
		return "", err
	}
	if len(tls) == 0 {
		return "", fmt.Errorf("cluster %q has no archive in %s: check --store and --cluster (binarc ls --store URL lists the clusters there)", cat.Layout.Cluster, cat.Store)
	}
	if name == "" {
		return tls[len(tls)-1], nil
	}
	for _, t := range tls {
		if t == name {
			return t, nil
		}
	}
	return "", usageError{fmt.Errorf("--timeline %s: no such timeline in cluster %q (it has %v)", name, cat.Layout.Cluster, tls)}
}

func errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }
