package chaos

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/archive/archivetest"
	"github.com/binarc/binarc/internal/binlogtest"
)

// forgery is one change the self-test makes to the campaign's archive and
// what the checker must then report.
type forgery struct {
	tl, file string
	what     string
	// gtids are the transactions check 1 (missing) or check 2 (twice)
	// must name.
	gtids []string
}

// selfTest returns the campaign's afterCheck: on the archive the campaign
// just checked, it (a) removes the transactions of one segment of a
// complete file, the later events renumbered with valid CRC32s and the
// index patched, and (b) copies the last transaction of a timeline's
// history into the next timeline just past its join. The checker, run
// again on the forged archive through the same binarc binlog fetch and
// mariadb-binlog path, must name every removed acknowledged transaction
// as missing and the copied one as appearing twice. binarc verify is run
// too, to show the forgeries pass the format's own checks.
func selfTest(t *testing.T) func(ctx context.Context, cp *campaign) {
	return func(ctx context.Context, cp *campaign) {
		if len(cp.tls) == 0 {
			t.Error("self-test: the checks did not read the archive")
			return
		}
		st, err := cp.c.s3.OpenStore(ctx, cp.r.store)
		if err != nil {
			t.Errorf("self-test: open the store: %v", err)
			return
		}
		cat := archive.Catalog{Store: st, Layout: archive.Layout{Cluster: clusterName}}
		hist, _ := History(cp.tls)
		dup, err := duplicateAcrossJoin(ctx, cat, cp.tls, hist)
		if err != nil {
			t.Errorf("self-test: %v", err)
			return
		}
		final, err := cp.finalRows(ctx)
		if err != nil {
			t.Errorf("self-test: %v", err)
			return
		}
		recs := cp.w.records()
		acked := map[string]bool{}
		for _, r := range recs {
			if r.Status == Acked && final[r.ID] {
				acked[r.GTID] = true
			}
		}
		cut, err := removeSegment(ctx, cat, hist, acked, dup)
		if err != nil {
			t.Errorf("self-test: %v", err)
			return
		}
		t.Logf("self-test: %s; %s", dup.what, cut.what)

		tls, err := cp.readTimelines(ctx, "fetched-forged")
		if err != nil {
			t.Errorf("self-test: read the forged archive: %v", err)
			return
		}
		forged, problems := History(tls)
		if len(problems) != 0 {
			t.Errorf("self-test: the forged archive's history: %v", problems)
		}
		missing := Missing(recs, final, forged)
		if len(missing) != len(cut.gtids) {
			t.Errorf("self-test: %s; check 1 reported %d missing, want %d: %q", cut.what, len(missing), len(cut.gtids), missing)
		}
		for _, g := range cut.gtids {
			if !anyNames(missing, g+" ") {
				t.Errorf("self-test: %s; check 1 does not name %s: %q", cut.what, g, missing)
			}
		}
		dups := Duplicates(forged)
		if len(dups) != 1 || !anyNames(dups, dup.gtids[0]+" ") || !anyNames(dups, dup.tl) {
			t.Errorf("self-test: %s; check 2 reported %q", dup.what, dups)
		}
		if len(missing) > 0 && len(dups) > 0 {
			t.Logf("self-test: check 1 on the forged archive: %s (and %d more); check 2: %s", missing[0], len(missing)-1, dups[0])
		}
		out, err := cp.r.run(ctx, 5*time.Minute, false, "verify", "--store", cp.r.store, "--cluster", clusterName)
		t.Logf("self-test: binarc verify of the forged archive (err %v):\n%s", err, lastLines(out, 4))
	}
}

func anyNames(lines []string, s string) bool {
	for _, l := range lines {
		if strings.Contains(l, s) {
			return true
		}
	}
	return false
}

// duplicateAcrossJoin copies the last transaction of a timeline's history
// into the next timeline at its join point, in a complete file.
func duplicateAcrossJoin(ctx context.Context, cat archive.Catalog, tls []Timeline, hist []Event) (forgery, error) {
	for i := len(tls) - 1; i > 0; i-- {
		next := tls[i]
		if next.Join == nil || !indexed(ctx, cat, next.Name, next.Join.At.File) {
			continue
		}
		var last *Event
		for j := range hist {
			if hist[j].Timeline == next.Join.Previous {
				last = &hist[j]
			}
		}
		if last == nil {
			continue
		}
		src, err := archivetest.ReadFile(ctx, cat, last.Timeline, last.File)
		if err != nil {
			return forgery{}, err
		}
		tx, err := spanAt(src, last.Pos)
		if err != nil {
			return forgery{}, fmt.Errorf("%s: %w", last, err)
		}
		at := next.Join.At
		dst, err := archivetest.ReadFile(ctx, cat, next.Name, at.File)
		if err != nil {
			return forgery{}, err
		}
		if spans, err := binlogtest.Transactions(dst); err == nil && len(spans) > 0 && at.Offset < spans[0].Start {
			// The timeline continues from its first byte (it shares no
			// transaction with the one before): the copy goes after the
			// file's header events, before its first transaction.
			at.Offset = spans[0].Start
		}
		forged, err := binlogtest.Splice(dst, at.Offset, at.Offset, src[tx.Start:tx.End])
		if err != nil {
			return forgery{}, err
		}
		if err := archivetest.ReplaceFile(ctx, cat, next.Name, at.File, forged); err != nil {
			return forgery{}, err
		}
		return forgery{tl: next.Name, file: at.File, gtids: []string{last.GTID},
			what: fmt.Sprintf("%s copied to %s/%s:%d, past the join", last, next.Name, at.File, at.Offset)}, nil
	}
	return forgery{}, fmt.Errorf("no join whose file is complete to forge a duplicate across")
}

// removeSegment removes the transactions that start in one segment of a
// complete file on the history (not the file dup changed), where at least
// one of them is acknowledged and on the final master.
func removeSegment(ctx context.Context, cat archive.Catalog, hist []Event, acked map[string]bool, dup forgery) (forgery, error) {
	byFile := map[[2]string][]Event{}
	var order [][2]string
	for _, e := range hist {
		k := [2]string{e.Timeline, e.File}
		if byFile[k] == nil {
			order = append(order, k)
		}
		byFile[k] = append(byFile[k], e)
	}
	for i := len(order) - 1; i >= 0; i-- {
		k := order[i]
		if k == [2]string{dup.tl, dup.file} || !indexed(ctx, cat, k[0], k[1]) {
			continue
		}
		ix, err := cat.ReadIndex(ctx, k[0], k[1])
		if err != nil {
			return forgery{}, err
		}
		for si := len(ix.Segments) - 1; si >= 0; si-- {
			seg := ix.Segments[si]
			var in []Event
			ackedIn, holdsCopy := 0, false
			for _, e := range byFile[k] {
				if e.Pos >= seg.Start && e.Pos < seg.End {
					in = append(in, e)
					if acked[e.GTID] {
						ackedIn++
					}
					// The copied transaction's original must stay: removed,
					// its copy would answer check 1 and leave check 2
					// nothing twice (seen once in make test).
					holdsCopy = holdsCopy || slices.Contains(dup.gtids, e.GTID)
				}
			}
			if ackedIn == 0 || holdsCopy {
				continue
			}
			return cutEvents(ctx, cat, k[0], k[1], in, acked, fmt.Sprintf("segment %d [%d,%d)", si, seg.Start, seg.End))
		}
	}
	return forgery{}, fmt.Errorf("no segment of a complete file holds an acknowledged transaction")
}

// cutEvents removes the transactions of evs from tl/file, last first so
// the earlier positions hold.
func cutEvents(ctx context.Context, cat archive.Catalog, tl, file string, evs []Event, acked map[string]bool, where string) (forgery, error) {
	plain, err := archivetest.ReadFile(ctx, cat, tl, file)
	if err != nil {
		return forgery{}, err
	}
	f := forgery{tl: tl, file: file}
	for i := len(evs) - 1; i >= 0; i-- {
		sp, err := spanAt(plain, evs[i].Pos)
		if err != nil {
			return forgery{}, fmt.Errorf("%s: %w", evs[i], err)
		}
		if plain, err = binlogtest.Splice(plain, sp.Start, sp.End, nil); err != nil {
			return forgery{}, err
		}
		if acked[evs[i].GTID] {
			f.gtids = append(f.gtids, evs[i].GTID)
		}
	}
	if err := archivetest.ReplaceFile(ctx, cat, tl, file, plain); err != nil {
		return forgery{}, err
	}
	f.what = fmt.Sprintf("%d transactions of %s/%s %s removed (%d acknowledged)", len(evs), tl, file, where, len(f.gtids))
	return f, nil
}

func spanAt(file []byte, pos uint64) (binlogtest.Span, error) {
	spans, err := binlogtest.Transactions(file)
	if err != nil {
		return binlogtest.Span{}, err
	}
	for _, sp := range spans {
		if sp.Start == pos {
			return sp, nil
		}
	}
	return binlogtest.Span{}, fmt.Errorf("no transaction starts at %d", pos)
}

func indexed(ctx context.Context, cat archive.Catalog, tl, file string) bool {
	refs, err := cat.Files(ctx, tl)
	if err != nil {
		return false
	}
	for _, r := range refs {
		if r.Name == file {
			return r.Indexed
		}
	}
	return false
}
