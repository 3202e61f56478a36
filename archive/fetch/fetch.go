package fetch

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/archive/objstore"
	"github.com/binarc/binarc/replication"
)

// Request says which archived binlog files to rebuild, and where.
type Request struct {
	// Dir receives the files (created if missing). An existing file is
	// never overwritten.
	Dir string
	// Timeline to fetch from; "": the one holding Files (a name several
	// timelines hold is refused), or with no Files the newest.
	Timeline string
	// Files are the binlog files to fetch; none: every file of the
	// timeline.
	Files []string
	// Fetched, when set, is called after each file is in place.
	Fetched func(File)
}

// File is one file Files rebuilt.
type File struct {
	Path     string
	Timeline string
	File     string
	Bytes    int64
	// Complete: the primary had finished the file; otherwise it is the
	// durable prefix of a file still being written, or cut off.
	Complete bool
	// Gap is set when the file was fetched only up to its first hole:
	// segments past it were never durable (an upload was unfinished when
	// the archiver stopped).
	Gap error
}

// Files rebuilds archived binlog files into req.Dir, byte for byte as the
// primary has them (binarc binlog fetch). Each file is written to a
// temporary file, its events checked as they pass (length, end position,
// CRC32), synced, and only then given its name: a failed or corrupt fetch
// leaves no file under the real name. It fails before fetching anything
// when a file is not in the timeline or already exists in req.Dir.
func Files(ctx context.Context, c archive.Catalog, req Request) ([]File, error) {
	tl, refs, err := fetchTimeline(ctx, c, req.Timeline, req.Files)
	if err != nil {
		return nil, err
	}
	byName := map[string]archive.FileRef{}
	var want []string
	for _, f := range refs {
		byName[f.Name] = f
		want = append(want, f.Name)
	}
	if len(req.Files) > 0 {
		want = req.Files
	}
	for _, name := range want {
		if _, ok := byName[name]; !ok {
			return nil, requestErrorf("binlog file %q is not in timeline %s of cluster %q: see binarc ls", name, tl, c.Layout.Cluster)
		}
	}
	if err := os.MkdirAll(req.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("--dir: %w", err)
	}
	for _, name := range want {
		if err := absent(filepath.Join(req.Dir, name)); err != nil {
			return nil, err
		}
	}
	var out []File
	for _, name := range want {
		f, err := fetchFile(ctx, c, tl, byName[name], req.Dir)
		if err != nil {
			return out, fmt.Errorf("fetch %s: %w", name, err)
		}
		out = append(out, f)
		if req.Fetched != nil {
			req.Fetched(f)
		}
	}
	return out, nil
}

// fetchFile rebuilds one file into dir.
func fetchFile(ctx context.Context, c archive.Catalog, tl string, ref archive.FileRef, dir string) (File, error) {
	st, err := c.FileState(ctx, tl, ref)
	if err != nil {
		return File{}, err
	}
	dst := filepath.Join(dir, ref.Name)
	n, err := writeFileAtomic(dst, func(f *os.File) (int64, error) {
		check := replication.NewFileChecker(f, st.Size)
		n, err := c.Rebuild(ctx, st, check)
		if err == nil {
			err = corrupt(st, check.Close())
		}
		return n, err
	})
	if err != nil {
		return File{}, err
	}
	return File{Path: dst, Timeline: tl, File: ref.Name, Bytes: n, Complete: st.Complete, Gap: st.Gap}, nil
}

// ErrCorrupt marks archived bytes that are not a well-formed binlog file.
var ErrCorrupt = errors.New("corrupt binlog file in the archive")

// corrupt names the file, timeline and stored object of a malformed
// event (a *replication.EventError); other errors pass as they are.
func corrupt(fs *archive.FileState, err error) error {
	var ee *replication.EventError
	if !errors.As(err, &ee) {
		return err
	}
	object := "past the stored segments"
	for _, s := range fs.Segments {
		if ee.Offset >= s.Start && ee.Offset < s.End {
			object = "in segment " + s.Key
		}
	}
	if fs.CompactedKey != "" {
		object = "in " + fs.CompactedKey
	}
	return fmt.Errorf("%w: binlog=%s timeline=%s offset=%d (%s): %s", ErrCorrupt, fs.File, fs.Timeline, ee.Offset, object, ee.Problem)
}

// absent fails when path exists: Fetch never overwrites.
func absent(path string) error {
	_, err := os.Lstat(path)
	switch {
	case err == nil:
		return requestErrorf("%s already exists: binarc does not overwrite files; remove it or choose another --dir", path)
	case errors.Is(err, fs.ErrNotExist):
		return nil
	}
	return err
}

// writeFileAtomic writes dst through a temporary file beside it, syncs
// it, and links it to its name (which fails if dst appeared meanwhile:
// nothing is overwritten), then syncs the directory. A failed write leaves
// no file under dst.
func writeFileAtomic(dst string, write func(*os.File) (int64, error)) (int64, error) {
	dir := filepath.Dir(dst)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(dst)+".tmp-*")
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
	if err != nil {
		return n, err
	}
	if err := os.Link(tmp.Name(), dst); errors.Is(err, fs.ErrExist) {
		return n, absent(dst)
	} else if err != nil {
		// A file system without hard links: absent was checked before
		// the fetch began.
		if err := os.Rename(tmp.Name(), dst); err != nil {
			return n, err
		}
	}
	return n, objstore.SyncDir(dir)
}

// fetchTimeline picks the timeline to fetch files from and lists its
// files: the named one; else the one holding the named files; else the
// newest. The store is listed once per timeline at most.
func fetchTimeline(ctx context.Context, c archive.Catalog, name string, files []string) (string, []archive.FileRef, error) {
	tls, err := c.ExistingTimelines(ctx)
	if err != nil {
		return "", nil, err
	}
	if name != "" || len(files) == 0 || len(tls) < 2 {
		tl, err := c.PickFrom(tls, name)
		if err != nil {
			return "", nil, err
		}
		refs, err := c.Files(ctx, tl)
		return tl, refs, err
	}
	listed := map[string][]archive.FileRef{}
	for _, tl := range tls {
		if listed[tl], err = c.Files(ctx, tl); err != nil {
			return "", nil, err
		}
	}
	tl, err := timelineHolding(tls, listed, files)
	if err != nil {
		return "", nil, err
	}
	if tl == "" {
		tl = tls[len(tls)-1] // no timeline holds them: the newest says so
	}
	return tl, listed[tl], nil
}

// timelineHolding picks the timeline holding the named binlog files: a
// bare file name means nothing across timelines (two servers name their
// files alike), so a name several timelines hold is refused with the
// candidates listed, and so are names in different timelines. Names no
// timeline holds: "".
func timelineHolding(tls []string, listed map[string][]archive.FileRef, names []string) (string, error) {
	holders := map[string][]string{}
	for _, tl := range tls {
		for _, fr := range listed[tl] {
			holders[fr.Name] = append(holders[fr.Name], tl)
		}
	}
	pick := ""
	for _, n := range names {
		h := holders[n]
		switch {
		case len(h) > 1:
			return "", requestErrorf("binlog file %s is in %d timelines (%s): two servers named their files alike; give --timeline", n, len(h), strings.Join(h, ", "))
		case len(h) == 1 && pick != "" && h[0] != pick:
			return "", requestErrorf("the files named are in different timelines (%s and %s): fetch them with one --timeline at a time", pick, h[0])
		case len(h) == 1:
			pick = h[0]
		}
	}
	return pick, nil
}

func requestErrorf(format string, args ...any) error {
	return archive.RequestError(fmt.Errorf(format, args...))
}
