package replication

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	gmysql "github.com/go-mysql-org/go-mysql/mysql"
	gomysql "github.com/go-mysql-org/go-mysql/replication"
)

// GTIDState is a set of transactions named by GTID: on MariaDB a binlog
// state (the last seq_no of each domain and server, as a Gtid_list event
// or gtid_binlog_state holds it), on MySQL a GTID set (uuid:intervals, as
// Previous_gtids or gtid_executed). The zero value is an empty MariaDB
// state that turns into a MySQL set when a MySQL GTID is added.
type GTIDState struct {
	maria map[uint32]map[uint32]uint64 // domain -> server_id -> last seq_no
	mysql *gmysql.MysqlGTIDSet
}

// ParseGTIDState reads a MariaDB list ("0-1-5,0-2-7") or a MySQL set
// ("uuid:1-5:7,uuid2:1-3"). An empty string is the empty state.
func ParseGTIDState(s string) (*GTIDState, error) {
	st := &GTIDState{}
	s = strings.TrimSpace(s)
	if s == "" {
		return st, nil
	}
	if strings.Contains(s, ":") {
		set, err := gmysql.ParseMysqlGTIDSet(s)
		if err != nil {
			return nil, fmt.Errorf("GTID set %q: %w", s, err)
		}
		st.mysql = set.(*gmysql.MysqlGTIDSet)
		return st, nil
	}
	for _, part := range strings.Split(s, ",") {
		d, srv, seq, err := parseMariaGTID(strings.TrimSpace(part))
		if err != nil {
			return nil, fmt.Errorf("GTID state %q: %w", s, err)
		}
		st.setMaria(d, srv, seq)
	}
	return st, nil
}

func parseMariaGTID(g string) (domain, server uint32, seq uint64, err error) {
	p := strings.Split(g, "-")
	if len(p) != 3 {
		return 0, 0, 0, fmt.Errorf("%q is not a MariaDB GTID (domain-server-seq)", g)
	}
	d, e1 := strconv.ParseUint(p[0], 10, 32)
	s, e2 := strconv.ParseUint(p[1], 10, 32)
	n, e3 := strconv.ParseUint(p[2], 10, 64)
	if e1 != nil || e2 != nil || e3 != nil {
		return 0, 0, 0, fmt.Errorf("%q is not a MariaDB GTID (domain-server-seq)", g)
	}
	return uint32(d), uint32(s), n, nil
}

func (st *GTIDState) setMaria(d, srv uint32, seq uint64) {
	if st.maria == nil {
		st.maria = map[uint32]map[uint32]uint64{}
	}
	if st.maria[d] == nil {
		st.maria[d] = map[uint32]uint64{}
	}
	if seq > st.maria[d][srv] {
		st.maria[d][srv] = seq
	}
}

// Clone copies the state.
func (st *GTIDState) Clone() *GTIDState {
	c := &GTIDState{}
	for d, m := range st.maria {
		for s, n := range m {
			c.setMaria(d, s, n)
		}
	}
	if st.mysql != nil {
		c.mysql = st.mysql.Clone().(*gmysql.MysqlGTIDSet)
	}
	return c
}

// Add records one transaction. Strings that are not a GTID are ignored.
func (st *GTIDState) Add(g string) {
	if g == "" {
		return
	}
	if strings.Contains(g, ":") {
		if st.mysql == nil {
			s := gmysql.NewMysqlGTIDSet()
			st.mysql = &s
		}
		_ = st.mysql.Update(g)
		return
	}
	if d, s, n, err := parseMariaGTID(g); err == nil {
		st.setMaria(d, s, n)
	}
}

// AddState records every transaction of o.
func (st *GTIDState) AddState(o *GTIDState) {
	for d, m := range o.maria {
		for s, n := range m {
			st.setMaria(d, s, n)
		}
	}
	if o.mysql != nil {
		if st.mysql == nil {
			s := gmysql.NewMysqlGTIDSet()
			st.mysql = &s
		}
		_ = st.mysql.Update(o.mysql.String())
	}
}

// AddDomain records o's transactions in the domain of MariaDB GTID g (for
// a MySQL GTID, nothing: a MySQL binlog's Previous_gtids lists the whole
// executed set).
func (st *GTIDState) AddDomain(o *GTIDState, g string) {
	d, _, _, err := parseMariaGTID(g)
	if err != nil || strings.Contains(g, ":") {
		return
	}
	for s, n := range o.maria[d] {
		st.setMaria(d, s, n)
	}
}

// Has tells whether the transaction g is in the state, exactly: on MariaDB
// the same domain and server with a seq_no no higher than recorded. Two
// servers that both wrote seq_no 13 in a domain after a failover are told
// apart.
func (st *GTIDState) Has(g string) bool {
	if strings.Contains(g, ":") {
		if st.mysql == nil {
			return false
		}
		one, err := gmysql.ParseMysqlGTIDSet(g)
		return err == nil && st.mysql.Contain(one)
	}
	d, s, n, err := parseMariaGTID(g)
	if err != nil {
		return false
	}
	last, ok := st.maria[d][s]
	return ok && n <= last
}

// Covers tells whether a server standing at this state has applied g in
// MariaDB's replication sense: g's seq_no is no higher than the domain's
// position (gtid_slave_pos). On MySQL it is Has.
func (st *GTIDState) Covers(g string) bool {
	if strings.Contains(g, ":") {
		return st.Has(g)
	}
	d, _, n, err := parseMariaGTID(g)
	if err != nil {
		return false
	}
	var top uint64
	found := false
	for _, seq := range st.maria[d] {
		top, found = max(top, seq), true
	}
	return found && n <= top
}

// Empty tells whether the state holds no transaction.
func (st *GTIDState) Empty() bool {
	return len(st.maria) == 0 && (st.mysql == nil || st.mysql.IsEmpty())
}

// String is the binlog state: every domain and server on MariaDB, sorted
// ("0-1-5,0-2-7"); the GTID set on MySQL.
func (st *GTIDState) String() string {
	if st.mysql != nil && len(st.maria) == 0 {
		return st.mysql.String()
	}
	var parts []string
	for _, d := range sortedKeys(st.maria) {
		for _, s := range sortedKeys(st.maria[d]) {
			parts = append(parts, fmt.Sprintf("%d-%d-%d", d, s, st.maria[d][s]))
		}
	}
	if st.mysql != nil && !st.mysql.IsEmpty() {
		parts = append(parts, st.mysql.String())
	}
	return strings.Join(parts, ",")
}

// Pos is the state as a replication position: on MariaDB the GTID with the
// highest seq_no of each domain (gtid_slave_pos form); on MySQL the set.
func (st *GTIDState) Pos() string {
	if len(st.maria) == 0 {
		return st.String()
	}
	var parts []string
	for _, d := range sortedKeys(st.maria) {
		var bs uint32
		var bn uint64
		for s, n := range st.maria[d] {
			if n > bn || (n == bn && s < bs) {
				bs, bn = s, n
			}
		}
		parts = append(parts, fmt.Sprintf("%d-%d-%d", d, bs, bn))
	}
	return strings.Join(parts, ",")
}

func sortedKeys[V any](m map[uint32]V) []uint32 {
	keys := make([]uint32, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	return keys
}

// ParseGTIDListBody reads the state a MariaDB Gtid_list event (type 163)
// holds: the binlog state at the start of its file. body is the event
// without its 19-byte header (a trailing checksum is ignored).
func ParseGTIDListBody(body []byte) (*GTIDState, error) {
	if len(body) < 4 {
		return nil, errors.New("the Gtid_list event is truncated")
	}
	count := int(binary.LittleEndian.Uint32(body) & (1<<28 - 1))
	if len(body) < 4+16*count {
		return nil, fmt.Errorf("the Gtid_list event of %d GTIDs is truncated (%d bytes)", count, len(body))
	}
	st := &GTIDState{}
	for i := 0; i < count; i++ {
		p := body[4+16*i:]
		st.setMaria(binary.LittleEndian.Uint32(p), binary.LittleEndian.Uint32(p[4:]), binary.LittleEndian.Uint64(p[8:]))
	}
	return st, nil
}

// ParsePreviousGTIDsBody reads a MySQL Previous_gtids event (type 35): the
// GTIDs executed before its file. body is the event without its header and
// without its checksum.
func ParsePreviousGTIDsBody(body []byte) (st *GTIDState, err error) {
	defer func() {
		if r := recover(); r != nil { // the decoder indexes without bounds checks
			st, err = nil, errors.New("the Previous_gtids event is truncated")
		}
	}()
	var ev gomysql.PreviousGTIDsEvent
	if err := ev.Decode(body); err != nil {
		return nil, fmt.Errorf("the Previous_gtids event: %w", err)
	}
	return ParseGTIDState(ev.GTIDSets)
}

// FileStartState reads the GTID state at the start of a binlog file from
// its head (offset 0 on): MariaDB's Gtid_list or MySQL's Previous_gtids,
// the events that follow the format description. found is false when the
// file has neither (GTIDs off, or a server too old to write them).
func FileStartState(head io.Reader) (st *GTIDState, found bool, err error) {
	crc := false
	errDone := errors.New("done")
	err = ReadEvents(head, 0, func(off uint64, h Header, raw []byte) error {
		body := raw[HeaderLen:]
		switch h.Type {
		case gomysql.FORMAT_DESCRIPTION_EVENT:
			crc = HasChecksum(raw)
			return nil
		case gomysql.MARIADB_GTID_LIST_EVENT:
			st, err = ParseGTIDListBody(body)
		case gomysql.PREVIOUS_GTIDS_EVENT:
			if crc {
				body = body[:max(len(body)-4, 0)]
			}
			st, err = ParsePreviousGTIDsBody(body)
		case gomysql.MARIADB_BINLOG_CHECKPOINT_EVENT, gomysql.ROTATE_EVENT:
			return nil
		default:
			return errDone
		}
		if err != nil {
			return err
		}
		found = true
		return errDone
	})
	if errors.Is(err, errDone) || errors.Is(err, io.ErrUnexpectedEOF) && found {
		err = nil
	}
	if st == nil {
		st = &GTIDState{}
	}
	return st, found, err
}

// EventStartState reads a whole Gtid_list or Previous_gtids event (header
// included, checksum or not).
func EventStartState(raw []byte) (*GTIDState, error) {
	h, err := ParseHeader(raw)
	if err != nil {
		return nil, err
	}
	body := raw[HeaderLen:]
	switch h.Type {
	case gomysql.MARIADB_GTID_LIST_EVENT:
		return ParseGTIDListBody(body)
	case gomysql.PREVIOUS_GTIDS_EVENT:
		if HasChecksum(raw) {
			body = body[:len(body)-4]
		}
		return ParsePreviousGTIDsBody(body)
	}
	return nil, fmt.Errorf("event type %d holds no GTID state", h.Type)
}

// Contains tells whether every transaction of o is in st (exactly, see Has).
func (st *GTIDState) Contains(o *GTIDState) bool {
	for d, m := range o.maria {
		for s, n := range m {
			if last, ok := st.maria[d][s]; !ok || last < n {
				return false
			}
		}
	}
	if o.mysql != nil && !o.mysql.IsEmpty() {
		return st.mysql != nil && st.mysql.Contain(o.mysql)
	}
	return true
}

// CoversState tells whether a server at st has applied everything of o in
// the replication sense (see Covers): per domain, o's highest seq_no is no
// higher than st's.
func (st *GTIDState) CoversState(o *GTIDState) bool {
	for d, m := range o.maria {
		for s, n := range m {
			if !st.Covers(fmt.Sprintf("%d-%d-%d", d, s, n)) {
				return false
			}
		}
	}
	if o.mysql != nil && !o.mysql.IsEmpty() {
		return st.mysql != nil && st.mysql.Contain(o.mysql)
	}
	return true
}

// SamePosition tells whether two states are the same replication position:
// per domain the same highest seq_no (MariaDB), the same set (MySQL).
func (st *GTIDState) SamePosition(o *GTIDState) bool {
	return st.CoversState(o) && o.CoversState(st)
}

// Beyond lists what st holds past o, as GTID ranges per domain and server
// (MariaDB: "0-1-6..9", assuming each server's seq_no run is contiguous;
// MySQL: st's whole set when o does not contain it).
func (st *GTIDState) Beyond(o *GTIDState) []string {
	var out []string
	for _, d := range sortedKeys(st.maria) {
		for _, s := range sortedKeys(st.maria[d]) {
			n := st.maria[d][s]
			have := o.maria[d][s]
			switch {
			case have >= n:
			case have+1 == n:
				out = append(out, fmt.Sprintf("%d-%d-%d", d, s, n))
			default:
				out = append(out, fmt.Sprintf("%d-%d-%d..%d", d, s, have+1, n))
			}
		}
	}
	if st.mysql != nil && !st.mysql.IsEmpty() && (o.mysql == nil || !o.mysql.Contain(st.mysql)) {
		out = append(out, st.mysql.String()+" (not all in "+o.String()+")")
	}
	return out
}

// BinlogStartStates reads, for each named binlog file of the server, the
// GTID state at its start (the Info of its Gtid_list or Previous_gtids
// event, from SHOW BINLOG EVENTS). A file whose head names none is left
// out.
func (c Config) BinlogStartStates(ctx context.Context, files []string) (map[string]*GTIDState, error) {
	conn, err := c.dial(ctx)
	if err != nil {
		return nil, err
	}
	defer quit(conn)
	out := map[string]*GTIDState{}
	for _, f := range files {
		r, err := conn.Execute("SHOW BINLOG EVENTS IN '" + strings.ReplaceAll(f, "'", "''") + "' LIMIT 4")
		if err != nil {
			return nil, c.classify(err)
		}
		for i := 0; i < r.RowNumber(); i++ {
			typ := text(r, i, 2)
			if typ != "Gtid_list" && typ != "Previous_gtids" {
				continue
			}
			info := strings.Trim(strings.ReplaceAll(text(r, i, 5), "\n", ""), "[] ")
			st, err := ParseGTIDState(info)
			if err != nil {
				return nil, fmt.Errorf("binlog %s: %w", f, err)
			}
			out[f] = st
		}
	}
	return out, nil
}
