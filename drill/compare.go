package drill

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/binarc/binarc/replication"
	"github.com/go-mysql-org/go-mysql/client"
)

// restoredTable is a table of the restored server, cut and summed.
type restoredTable struct {
	table
	chunks []chunk
}

// sumRestored cuts and sums every table of the restored server: done
// before the replica is paused, so the pause holds only the replica's own
// sums.
func sumRestored(conn *client.Conn, chunkTime time.Duration) ([]restoredTable, error) {
	ts, err := listTables(conn)
	if err != nil {
		return nil, err
	}
	out := make([]restoredTable, len(ts))
	for i, t := range ts {
		cs, err := t.cut(conn, chunkTime)
		if err != nil {
			return nil, fmt.Errorf("restored server: %w", err)
		}
		out[i] = restoredTable{table: t, chunks: cs}
	}
	return out, nil
}

// compareOptions bound the comparison on the replica.
type compareOptions struct {
	Addr     string
	Budget   time.Duration // --max-replica-pause
	GTID     *replication.GTIDState
	Restored []restoredTable
	// CatchUp brings the restore on to the replica's position when the
	// replica is past it, and sums the restored tables again.
	CatchUp func(ctx context.Context, at *replication.GTIDState, deadline time.Time) ([]restoredTable, error)
}

// compareReplica pauses the replica at the restore's GTID position,
// sums the same chunks there, and starts it again as it was. A pause
// that would pass the budget stops comparing: the tables left are
// skipped, and the notes say so.
func compareReplica(ctx context.Context, rep *Report, conn *client.Conn, o compareOptions) (err error) {
	was, err := checkReplica(conn, o.Addr)
	if err != nil {
		return err
	}
	paused := time.Now()
	defer func() {
		rep.ReplicaPauseSeconds = time.Since(paused).Seconds()
		if rerr := resume(conn, was); rerr != nil && err == nil {
			err = rerr
		}
	}()
	err = pause(ctx, conn, was, o.GTID, o.Budget)
	var ahead *aheadError
	if errors.As(err, &ahead) && o.CatchUp != nil {
		var caught []restoredTable
		if caught, err = o.CatchUp(ctx, ahead.at, paused.Add(o.Budget)); err == nil {
			o.Restored, rep.GTID = caught, ahead.at.Pos()
			rep.Notes = append(rep.Notes, fmt.Sprintf("the replica was past the restore's point %s: the restore was brought on to its position %s from the archive, and compared there", ahead.g.Pos(), ahead.at.Pos()))
		}
	}
	var skip *notComparedError
	if err != nil && !errors.As(err, &skip) {
		return err
	}
	if err != nil {
		for _, t := range o.Restored {
			rep.Tables = append(rep.Tables, TableResult{Table: t.String(), Status: Skipped, Rows: rowsOf(t.chunks), Note: "replica not paused at the restore's point"})
		}
		rep.Notes = append(rep.Notes, "not compared: "+err.Error())
		return nil
	}
	onReplica, err := listTables(conn)
	if err != nil {
		return err
	}
	return compareTables(ctx, rep, conn, o, onReplica, paused)
}

// compareTables sums each restored table's chunks on the replica while
// the budget allows, and names the tables only one side has.
func compareTables(ctx context.Context, rep *Report, conn *client.Conn, o compareOptions, onReplica []table, paused time.Time) error {
	replicaCols := map[string]table{}
	for _, t := range onReplica {
		replicaCols[t.String()] = t
	}
	for _, t := range o.Restored {
		res := TableResult{Table: t.String(), Rows: rowsOf(t.chunks), Chunks: len(t.chunks)}
		rt, ok := replicaCols[t.String()]
		delete(replicaCols, t.String())
		switch {
		case !ok:
			res.Status, res.Note = Different, "not on the replica"
		case fmt.Sprint(rt.Cols) != fmt.Sprint(t.Cols):
			res.Status, res.Note = Different, "its columns differ from the replica's"
		case ctx.Err() != nil:
			return ctx.Err()
		default:
			if err := compareChunks(&res, conn, t, paused, o.Budget); err != nil {
				return err
			}
		}
		rep.Tables = append(rep.Tables, res)
	}
	for _, name := range slices.Sorted(maps.Keys(replicaCols)) {
		rep.Tables = append(rep.Tables, TableResult{Table: name, Status: Different, Note: "on the replica, not in the restore"})
	}
	if n := rep.Count(Skipped); n > 0 {
		rep.Notes = append(rep.Notes, fmt.Sprintf("%d of %d tables not compared: the replica's pause would have passed --max-replica-pause %s", n, len(rep.Tables), o.Budget))
	}
	return nil
}

// compareChunks sums t's chunks on the replica until one differs or the
// next would pass the pause budget (a chunk is expected to take there
// what it took on the restored server, twice over for safety).
func compareChunks(res *TableResult, conn *client.Conn, t restoredTable, paused time.Time, budget time.Duration) error {
	res.Status = Equal
	if len(t.PK) == 0 {
		res.Note = "no primary key: compared whole"
	}
	for i, c := range t.chunks {
		if time.Since(paused)+2*c.Took > budget {
			res.Status, res.Note = Skipped, fmt.Sprintf("--max-replica-pause %s reached after %d of %d chunks", budget, i, len(t.chunks))
			return nil
		}
		rows, sum, err := t.sum(conn, c)
		if err != nil {
			return fmt.Errorf("replica: %w", err)
		}
		if rows != c.Rows || sum != c.Sum {
			res.Status = Different
			res.Note = fmt.Sprintf("chunk %d of %d (%s): %d rows, checksum %08x on the replica; %d rows, checksum %08x restored",
				i+1, len(t.chunks), t.describe(c), rows, sum, c.Rows, c.Sum)
			return nil
		}
	}
	return nil
}

// describe names a chunk's key range.
func (t table) describe(c chunk) string {
	lower, upper := "start", "end"
	if c.Lower != nil {
		lower = fmt.Sprint(c.Lower...)
	}
	if c.Upper != nil {
		upper = fmt.Sprint(c.Upper...)
	}
	if len(t.PK) == 0 {
		return "whole table"
	}
	return fmt.Sprintf("%v after %s up to %s", t.PK, lower, upper)
}

func rowsOf(cs []chunk) int64 {
	var n int64
	for _, c := range cs {
		n += c.Rows
	}
	return n
}
