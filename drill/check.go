package drill

import (
	"fmt"
	"strings"

	"github.com/binarc/binarc/replication"
	"github.com/binarc/binarc/restore"
	"github.com/go-mysql-org/go-mysql/client"
)

// checkTables is the comparison without a replica: CHECK TABLE and the
// row count of every table of the restored server.
func checkTables(rep *Report, conn *client.Conn) error {
	ts, err := listTables(conn)
	if err != nil {
		return err
	}
	for _, t := range ts {
		res := TableResult{Table: t.String(), Status: Checked}
		r, err := conn.Execute("CHECK TABLE " + t.quoted())
		if err != nil {
			return fmt.Errorf("restored server: CHECK TABLE %s: %w", t, err)
		}
		for i := range r.RowNumber() {
			kind, _ := r.GetStringByName(i, "Msg_type")
			text, _ := r.GetStringByName(i, "Msg_text")
			if strings.EqualFold(kind, "error") || (strings.EqualFold(kind, "status") && !strings.EqualFold(text, "OK")) {
				res.Status, res.Note = Different, "CHECK TABLE: "+text
			}
		}
		c, err := conn.Execute("SELECT COUNT(*) FROM " + t.quoted())
		if err != nil {
			return fmt.Errorf("restored server: count %s: %w", t, err)
		}
		res.Rows, _ = c.GetInt(0, 0)
		rep.Tables = append(rep.Tables, res)
	}
	return nil
}

// restoredGTID reads the restored server's GTID position and checks it
// against what the snapshot's manifest and the archive say the restore
// reached: the snapshot's state plus the last transaction replayed.
func restoredGTID(conn *client.Conn, plan *restore.RestorePlan) (*replication.GTIDState, error) {
	got, err := gtidSlavePos(conn, "restored server")
	if err != nil {
		return nil, err
	}
	want := &replication.GTIDState{}
	if plan.Snapshot != nil {
		if want, err = replication.ParseGTIDState(plan.Snapshot.DataGTIDState()); err != nil {
			return nil, fmt.Errorf("snapshot %s: its GTID state: %w", plan.Snapshot.ID, err)
		}
	}
	if plan.Binlog != nil && plan.Binlog.Last != nil && plan.Binlog.Last.GTID != "" {
		want.Add(plan.Binlog.Last.GTID)
	}
	if !want.Empty() && !got.SamePosition(want) {
		return got, fmt.Errorf("the restored data stands at GTID %s, but the snapshot's manifest and the archive say the restore reached %s: the snapshot's coordinates or the archived binlog are wrong (binarc verify, then take a new snapshot)", got.Pos(), want.Pos())
	}
	return got, nil
}
