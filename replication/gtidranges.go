package replication

import (
	"fmt"
	"strconv"
	"strings"
)

// GTIDRanges compacts a list of GTIDs into ranges of consecutive seq_no
// of one domain and server (MariaDB "0-1-5..9") or one uuid (MySQL
// "uuid:5-9").
func GTIDRanges(gs []string) []string {
	var out []string
	var prefix string
	var lo, hi uint64
	flush := func() {
		if prefix == "" {
			return
		}
		switch {
		case lo == hi:
			out = append(out, prefix+strconv.FormatUint(lo, 10))
		case strings.HasSuffix(prefix, ":"):
			out = append(out, fmt.Sprintf("%s%d-%d", prefix, lo, hi))
		default:
			out = append(out, fmt.Sprintf("%s%d..%d", prefix, lo, hi))
		}
	}
	for _, g := range gs {
		p, n, ok := splitGTID(g)
		if !ok {
			continue
		}
		if p == prefix && n == hi+1 {
			hi = n
			continue
		}
		flush()
		prefix, lo, hi = p, n, n
	}
	flush()
	return out
}

// splitGTID splits a GTID into its source prefix ("0-1-", "uuid:") and
// sequence number.
func splitGTID(g string) (string, uint64, bool) {
	i := strings.LastIndexAny(g, "-:")
	if i < 0 {
		return "", 0, false
	}
	n, err := strconv.ParseUint(g[i+1:], 10, 64)
	return g[:i+1], n, err == nil
}

// FirstOfRange is the first GTID of a range made by GTIDRanges.
func FirstOfRange(r string) string {
	if first, _, ok := strings.Cut(r, ".."); ok {
		return first
	}
	if i := strings.LastIndex(r, ":"); i >= 0 {
		lo, _, _ := strings.Cut(r[i+1:], "-")
		return r[:i+1] + lo
	}
	return r
}

// InGTIDRanges tells whether g is in a list made by GTIDRanges.
func InGTIDRanges(ranges []string, g string) bool {
	p, n, ok := splitGTID(g)
	if !ok {
		return false
	}
	for _, r := range ranges {
		if !strings.HasPrefix(r, p) {
			continue
		}
		rest := r[len(p):]
		lo, hi, isRange := strings.Cut(rest, "..")
		if !isRange {
			lo, hi, isRange = strings.Cut(rest, "-")
		}
		if !isRange {
			hi = lo
		}
		a, e1 := strconv.ParseUint(lo, 10, 64)
		b, e2 := strconv.ParseUint(hi, 10, 64)
		if e1 == nil && e2 == nil && a <= n && n <= b {
			return true
		}
	}
	return false
}
