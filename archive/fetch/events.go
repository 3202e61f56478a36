package fetch

import (
	"context"
	"strings"
	"time"

	"github.com/binarc/binarc/archive"
)

// TransactionFilter selects transactions to list (binarc binlog events).
type TransactionFilter struct {
	// From and To bound the transactions' times, inclusive; zero: no
	// bound.
	From, To time.Time
	// Grep keeps only transactions whose statements or tables contain it,
	// case-insensitive; "": all.
	Grep string
}

// Match says whether f selects t.
func (f TransactionFilter) Match(t *archive.Transaction) bool {
	if (!f.From.IsZero() && t.Time.Before(f.From)) || (!f.To.IsZero() && t.Time.After(f.To)) {
		return false
	}
	if f.Grep == "" {
		return true
	}
	return strings.Contains(strings.ToLower(t.Summary()+" "+strings.Join(t.Tables, " ")), strings.ToLower(f.Grep))
}

// outside says whether no transaction of fs can be in f's times, so the
// file need not be read.
func (f TransactionFilter) outside(fs *archive.FileState) bool {
	return (!f.To.IsZero() && fs.FirstEventTime.After(f.To)) ||
		(!f.From.IsZero() && !fs.LastEventTime.IsZero() && fs.LastEventTime.Before(f.From))
}

// EachTransaction calls fn with each transaction of timeline tl that f
// selects, file by file in binlog order, until fn returns false. Files
// wholly outside f's times are not read (binarc binlog events).
func EachTransaction(ctx context.Context, c archive.Catalog, tl string, f TransactionFilter, fn func(*archive.Transaction) bool) error {
	refs, err := c.Files(ctx, tl)
	if err != nil {
		return err
	}
	more := true
	for _, ref := range refs {
		fs, err := c.FileState(ctx, tl, ref)
		if err != nil {
			return err
		}
		if f.outside(fs) {
			continue
		}
		err = archive.Transactions(ctx, c, fs, func(t *archive.Transaction) bool {
			t.Timeline = tl
			if f.Match(t) {
				more = fn(t)
			}
			return more
		})
		if err != nil || !more {
			return err
		}
	}
	return nil
}
