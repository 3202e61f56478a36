package serve

import (
	"context"
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/binarc/binarc/replication"
	"github.com/go-mysql-org/go-mysql/mysql"
)

// erReplicaHasMoreGTIDs is MySQL's ER_SLAVE_HAS_MORE_GTIDS_THAN_MASTER,
// which go-mysql does not name.
const erReplicaHasMoreGTIDs = 1885

// parseDumpGTID reads MySQL's COM_BINLOG_DUMP_GTID: flags (2), server_id
// (4), binlog name length (4), name, position (8), then the GTID set the
// replica has executed, its length (4) and its encoding (sid count, then
// per sid its uuid, interval count and [start, end) pairs). MySQL reads
// the set whether or not BINLOG_THROUGH_GTID is set (go-mysql, for one,
// sends it with flags 0), and so does serve.
func parseDumpGTID(body []byte) (dumpRequest, *replication.GTIDState, error) {
	if len(body) < 10 {
		return dumpRequest{}, nil, fmt.Errorf("COM_BINLOG_DUMP_GTID of %d bytes: shorter than flags, server id and name length (10)", len(body))
	}
	req := dumpRequest{Flags: binary.LittleEndian.Uint16(body), ServerID: binary.LittleEndian.Uint32(body[2:])}
	n := int(binary.LittleEndian.Uint32(body[6:]))
	rest := body[10:]
	if n > len(rest) || len(rest)-n < 8 {
		return dumpRequest{}, nil, fmt.Errorf("COM_BINLOG_DUMP_GTID: a binlog name of %d bytes and a position do not fit in the %d bytes left", n, len(rest))
	}
	req.File, req.Pos = string(rest[:n]), binary.LittleEndian.Uint64(rest[n:])
	rest = rest[n+8:]
	set := &replication.GTIDState{}
	if len(rest) >= 4 {
		size := int(binary.LittleEndian.Uint32(rest))
		if size > len(rest)-4 {
			return dumpRequest{}, nil, fmt.Errorf("COM_BINLOG_DUMP_GTID: a GTID set of %d bytes does not fit in the %d bytes left", size, len(rest)-4)
		}
		if size > 0 {
			decoded, err := mysql.DecodeMysqlGTIDSet(rest[4 : 4+size])
			if err != nil {
				return dumpRequest{}, nil, fmt.Errorf("COM_BINLOG_DUMP_GTID: the replica's GTID set: %w", err)
			}
			if set, err = replication.ParseGTIDState(decoded.String()); err != nil {
				return dumpRequest{}, nil, err
			}
		}
	}
	return req, set, nil
}

// dumpGTID answers COM_BINLOG_DUMP_GTID, MySQL's dump by GTID set.
func (s *session) dumpGTID(ctx context.Context, body []byte) error {
	req, set, err := parseDumpGTID(body)
	if err != nil {
		return s.conn.WriteValue(mysql.NewError(mysql.ER_MALFORMED_PACKET, "binarc serve: "+err.Error()))
	}
	s.serverID = req.ServerID
	st := s.newStreamer(req)
	return st.stream(ctx, func() (uint64, error) { return st.startMySQL(ctx, set) })
}

// startMySQL finds where a MySQL replica with GTID set executed starts,
// as MySQL's find_first_log_not_in_gtid_set does: the newest file whose
// Previous_gtids the replica has all of, from its start, leaving out the
// transactions it has. A replica missing transactions the archive no
// longer holds, or holding ones the archive never had, is refused.
func (st *streamer) startMySQL(ctx context.Context, executed *replication.GTIDState) (uint64, error) {
	if err := st.prepare(ctx); err != nil {
		return 0, err
	}
	found := -1
	for i := len(st.files) - 1; i >= 0 && found < 0; i-- {
		h, err := readHead(ctx, st.cfg.Source, st.files[i])
		if err != nil {
			return 0, err
		}
		if h.Previous == nil {
			return 0, dumpError("binlog %s has no Previous_gtids event: a dump by GTID set needs a MySQL binlog written with gtid_mode=ON; replicate by file and position", st.files[i].Name)
		}
		if executed.Contains(h.Previous) {
			found = i
		}
	}
	if found < 0 {
		h, _ := readHead(ctx, st.cfg.Source, st.files[0])
		return 0, mysql.NewError(mysql.ER_MASTER_HAS_PURGED_REQUIRED_GTIDS, fmt.Sprintf(
			"binarc serve: the replica's GTID set %s lacks transactions from before the archive's first file %s (whose Previous_gtids is %s): they were never archived or were pruned; restore the replica from a snapshot (binarc restore) and replicate from there",
			executed, st.files[0].Name, h.Previous))
	}
	last := st.files[len(st.files)-1]
	newest, err := readHead(ctx, st.cfg.Source, last)
	if err != nil {
		return 0, err
	}
	if archived := mysqlExecutedAt(newest, last); !archived.Contains(executed) {
		return 0, mysql.NewError(erReplicaHasMoreGTIDs, fmt.Sprintf(
			"binarc serve: the replica's GTID set %s has transactions the archive does not (it holds %s): point it at the right archive or primary",
			executed, archived))
	}
	st.exclude, st.idx = executed, found
	return replication.MagicLen, st.prepareStop(ctx)
}

// mysqlExecutedAt is MySQL's gtid_executed at the end of the archived
// file f whose head is h: its Previous_gtids and the transactions archived
// in it, from its first GTID to its last (a primary numbers its own
// transactions without gaps).
func mysqlExecutedAt(h *fileHead, f File) *replication.GTIDState {
	st := &replication.GTIDState{}
	if h.Previous != nil {
		st = h.Previous.Clone()
	}
	fu, fs, ok1 := strings.Cut(f.FirstGTID, ":")
	lu, ls, ok2 := strings.Cut(f.LastGTID, ":")
	if ok1 && ok2 && fu == lu {
		if r, err := replication.ParseGTIDState(fmt.Sprintf("%s:%s-%s", fu, fs, ls)); err == nil {
			st.AddState(r)
			return st
		}
	}
	st.Add(f.FirstGTID)
	st.Add(f.LastGTID)
	return st
}
