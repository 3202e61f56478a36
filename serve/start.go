package serve

import (
	"context"
	"fmt"
	"strings"

	"github.com/binarc/binarc/replication"
	gomysql "github.com/go-mysql-org/go-mysql/replication"
)

// start finds the file and offset to stream from.
func (st *streamer) start(ctx context.Context, file string, pos uint64) (uint64, error) {
	if err := st.prepare(ctx); err != nil {
		return 0, err
	}
	files := st.files
	if cs, ok := st.s.vars["slave_connect_state"]; ok && cs != nil {
		return st.startGTID(ctx, fmt.Sprint(cs))
	}
	if file == "" {
		st.idx = 0
	} else {
		st.named = true
		st.idx = -1
		var on []string
		for i, f := range files {
			if f.Name == file {
				st.idx = i
				on = append(on, f.Timeline)
			}
		}
		if st.idx < 0 {
			return 0, dumpError("binlog %s is not in the archive, which holds %s to %s", file, files[0].Name, files[len(files)-1].Name)
		}
		if len(on) > 1 {
			return 0, dumpError("binlog %s is on %d timelines of the archive (%s): a failover or a flip between masters reused its name, so a file and position do not say which; replicate by GTID (MASTER_USE_GTID=slave_pos)", file, len(on), strings.Join(on, ", "))
		}
	}
	f := files[st.idx]
	pos = max(pos, replication.MagicLen)
	if pos > f.Size {
		return 0, dumpError("position %s:%d is past the end of the archived file (%d bytes)", f.Name, pos, f.Size)
	}
	return pos, st.prepareStop(ctx)
}

// prepare lists the archive's files and checks the client's checksum
// declaration, for every kind of dump.
func (st *streamer) prepare(ctx context.Context) error {
	files, err := st.cfg.Source.Files(ctx)
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return dumpError("the archive holds no binlog yet")
	}
	st.files = files
	st.crc = checksumVar(st.s.vars["master_binlog_checksum"])
	if v, ok := st.s.vars["master_binlog_checksum"]; !ok || v == nil {
		// A replica that did not say it understands checksums gets none,
		// and MariaDB refuses to send it checksummed events.
		if st.srv().checksums(ctx) {
			return dumpError("the archived binlog has CRC32 checksums and the replica did not declare it can check them (SET @master_binlog_checksum): use a replica that supports binlog checksums (MariaDB 5.3+, MySQL 5.6+)")
		}
	} else if s := fmt.Sprint(v); s != "NONE" && s != "CRC32" {
		return dumpError("the replica asks for binlog checksum %q; binarc serves the archive as written: NONE or CRC32", s)
	}
	return nil
}

// startGTID finds the newest file that starts at or before the replica's
// GTID position (MariaDB's gtid_find_binlog_file) and checks the archive
// holds that position.
func (st *streamer) startGTID(ctx context.Context, state string) (uint64, error) {
	pos, err := parseState(state)
	if err != nil {
		return 0, dumpError("%v", err)
	}
	st.gtid = pos
	found := -1
	var head *fileHead
	for i := len(st.files) - 1; i >= 0; i-- {
		h, err := readHead(ctx, st.cfg.Source, st.files[i])
		if err != nil {
			return 0, err
		}
		if err := h.enteredAt(st.files[i]); err != nil {
			return 0, err
		}
		if !h.HasList {
			return 0, dumpError("binlog %s has no Gtid_list event: GTID replication from binarc needs a MariaDB binlog; use MASTER_USE_GTID=no with a file and position", st.files[i].Name)
		}
		if startsBefore(h.List, pos) {
			found, head = i, h
			break
		}
	}
	if found < 0 {
		h, _ := readHead(ctx, st.cfg.Source, st.files[0])
		return 0, dumpError("the replica's GTID position %s is older than the archive, which starts at %s (after GTIDs %v): the binlog it needs was never archived or was pruned; restore the replica from a snapshot (binarc restore) and replicate from there",
			state, st.files[0].Name, listString(h))
	}
	// A domain whose position is the file's starting state is reached
	// already; one beyond the archive's newest transaction never will be.
	newest := map[uint32]gtidEntry{}
	for _, e := range head.List {
		newest[e.Domain] = e
	}
	for _, f := range st.files[found:] {
		for _, g := range []string{f.FirstGTID, f.LastGTID} {
			if e, err := parseGTID(g); err == nil && e.Seq > newest[e.Domain].Seq {
				newest[e.Domain] = e
			}
		}
	}
	for d, p := range pos {
		if n, ok := newest[d]; !ok || p.Seq > n.Seq {
			return 0, dumpError("the replica's GTID position %s is not in the archive: the archive's newest transaction in domain %d is %s; the replica has transactions the archived primary never wrote (point it at the right archive or primary)",
				p, d, n)
		}
		for _, e := range head.List {
			if e == p {
				delete(st.gtid, d)
			}
		}
	}
	st.idx = found
	return replication.MagicLen, st.prepareStop(ctx)
}

func listString(h *fileHead) string {
	if h == nil {
		return "unknown"
	}
	var s []string
	for _, e := range h.List {
		s = append(s, e.String())
	}
	return fmt.Sprint(s)
}

// prepareStop finds, for a stream that stops at the archive's end, the
// last transaction boundary archived, so that no half transaction is sent.
func (st *streamer) prepareStop(ctx context.Context) error {
	stop := st.cfg.Stop
	if stop.Position.File != "" {
		// The first file of that name from the replica's start on; a
		// name before it in binlog order is refused.
		for i := st.idx; i < len(st.files) && st.stopAt == nil; i++ {
			if st.files[i].Name == stop.Position.File {
				st.stopAt = &streamPos{idx: i, off: stop.Position.Offset}
			}
		}
		if st.stopAt == nil && replication.CompareBinlogNames(stop.Position.File, st.files[st.idx].Name) < 0 {
			return dumpError("the stop position %s is before the replica's start in %s", stop.Position, st.files[st.idx].Name)
		}
	}
	if st.cfg.Follow || !stop.IsZero() {
		return nil
	}
	for i := len(st.files) - 1; i >= st.idx; i-- {
		f := st.files[i]
		var g groups
		g.crc = true
		var end uint64
		err := st.cfg.Source.Read(ctx, f, replication.MagicLen, func(off uint64, h replication.Header, raw []byte) error {
			if h.Type == gomysql.FORMAT_DESCRIPTION_EVENT {
				g.crc = fileChecksum(raw)
			}
			g.begins(off, h, raw)
			g.ends(h, raw)
			if !g.open {
				end = off + uint64(len(raw))
			}
			return nil
		})
		if err != nil {
			return err
		}
		if end > 0 {
			st.end = &streamPos{idx: i, off: end}
			return nil
		}
	}
	return nil
}
