package serve

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/binarc/binarc/replication"
	gomysql "github.com/go-mysql-org/go-mysql/replication"
)

// parseGTID reads a MariaDB GTID, domain-server-seq.
func parseGTID(s string) (gtidEntry, error) {
	p := strings.Split(strings.TrimSpace(s), "-")
	if len(p) != 3 {
		return gtidEntry{}, errors.New("not a MariaDB GTID (domain-server-seq, e.g. 0-1-2345)")
	}
	d, err1 := strconv.ParseUint(p[0], 10, 32)
	sv, err2 := strconv.ParseUint(p[1], 10, 32)
	n, err3 := strconv.ParseUint(p[2], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return gtidEntry{}, errors.New("not a MariaDB GTID (domain-server-seq, e.g. 0-1-2345)")
	}
	return gtidEntry{Domain: uint32(d), Server: uint32(sv), Seq: n}, nil
}

func (g gtidEntry) String() string { return fmt.Sprintf("%d-%d-%d", g.Domain, g.Server, g.Seq) }

// parseState reads a replica's GTID position (@slave_connect_state): a
// list of GTIDs, at most one per domain.
func parseState(s string) (map[uint32]gtidEntry, error) {
	list, err := parseGTIDs(s)
	if err != nil {
		return nil, fmt.Errorf("GTID position %w", err)
	}
	out := map[uint32]gtidEntry{}
	for _, g := range list {
		if _, dup := out[g.Domain]; dup {
			return nil, fmt.Errorf("GTID position %q names domain %d twice", s, g.Domain)
		}
		out[g.Domain] = g
	}
	return out, nil
}

// parseGTIDs reads a comma-separated list of GTIDs.
func parseGTIDs(s string) ([]gtidEntry, error) {
	var out []gtidEntry
	for _, part := range strings.Split(s, ",") {
		if strings.TrimSpace(part) == "" {
			continue
		}
		g, err := parseGTID(part)
		if err != nil {
			return nil, fmt.Errorf("%q: %q is %w", s, part, err)
		}
		out = append(out, g)
	}
	return out, nil
}

// fileHead is what a file starts with: its format description and the
// GTID state before its first transaction (MariaDB's Gtid_list event).
type fileHead struct {
	FDE     []byte
	List    []gtidEntry
	HasList bool
	// Previous is MySQL's Previous_gtids: the GTID set before the file.
	Previous *replication.GTIDState
	// End is the offset after the head's events.
	End uint64
}

// readHead reads a file's format description and Gtid_list.
func readHead(ctx context.Context, src Source, f File) (*fileHead, error) {
	h := &fileHead{}
	err := src.Read(ctx, f, replication.MagicLen, func(off uint64, hd replication.Header, raw []byte) error {
		switch {
		case h.FDE == nil:
			if hd.Type != gomysql.FORMAT_DESCRIPTION_EVENT {
				return fmt.Errorf("binlog=%s: the first event is %s, not a format description", f.Name, hd.Type)
			}
			h.FDE = append([]byte(nil), raw...)
			h.End = off + uint64(len(raw))
			return nil
		case hd.Type == gomysql.MARIADB_GTID_LIST_EVENT:
			h.List, h.HasList = parseGTIDList(raw, replication.HasChecksum(h.FDE)), true
			return errStop
		case hd.Type == gomysql.PREVIOUS_GTIDS_EVENT:
			st, err := replication.EventStartState(raw)
			if err != nil {
				return fmt.Errorf("binlog=%s offset=%d: %w", f.Name, off, err)
			}
			h.Previous = st
			return nil
		case hd.Type == gomysql.MARIADB_BINLOG_CHECKPOINT_EVENT, hd.Type == gomysql.MARIADB_START_ENCRYPTION_EVENT:
			return nil
		}
		return errStop
	})
	if err != nil && !errors.Is(err, errStop) {
		return nil, err
	}
	if h.FDE == nil {
		return nil, fmt.Errorf("binlog=%s: no format description archived yet", f.Name)
	}
	return h, nil
}

// enteredAt makes the head of a file the stream enters after a timeline
// join (f.Start past the head) say the GTID state where it is entered:
// what came before it, the previous timeline streamed.
func (h *fileHead) enteredAt(f File) error {
	if f.Start <= h.End || f.StartState == "" {
		return nil
	}
	// A binlog state, like a Gtid_list: one GTID per domain and server.
	list, err := parseGTIDs(f.StartState)
	if err != nil {
		return fmt.Errorf("binlog=%s timeline=%s: GTID state at the join %w", f.Name, f.Timeline, err)
	}
	sort.SliceStable(list, func(i, j int) bool { return list[i].Domain < list[j].Domain })
	h.List, h.HasList = list, true
	return nil
}

// startsBefore tells whether a file whose Gtid_list is list starts at or
// before the replica's position: every domain the file had seen, the
// replica has seen at least as far.
func startsBefore(list []gtidEntry, state map[uint32]gtidEntry) bool {
	for _, e := range list {
		s, ok := state[e.Domain]
		if !ok || s.Seq < e.Seq {
			return false
		}
	}
	return true
}
