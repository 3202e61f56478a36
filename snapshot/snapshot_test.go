package snapshot

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/binarc/binarc/internal/xbstreamtest"
)

// mariadbSlaveStatus is a row of SHOW SLAVE STATUS as MariaDB 10.11
// returns it (values from a test replica).
var mariadbSlaveStatus = map[string]string{
	"Slave_IO_State": "Waiting for master to send event", "Master_Host": "127.0.0.1", "Master_User": "repl",
	"Master_Port": "40123", "Connect_Retry": "60", "Master_Log_File": "mysql-bin.000003", "Read_Master_Log_Pos": "9120",
	"Relay_Log_File": "relay-bin.000004", "Relay_Log_Pos": "611", "Relay_Master_Log_File": "mysql-bin.000002",
	"Slave_IO_Running": "Yes", "Slave_SQL_Running": "No", "Exec_Master_Log_Pos": "4711", "Relay_Log_Space": "12000",
	"Last_IO_Errno": "0", "Last_IO_Error": "", "Last_SQL_Errno": "1062", "Last_SQL_Error": "Duplicate entry",
	"Master_Server_Id": "1", "Using_Gtid": "Slave_Pos", "Gtid_IO_Pos": "0-1-77", "Slave_SQL_Running_State": "",
}

// mysqlReplicaStatus is a row of SHOW REPLICA STATUS as MySQL 8.0.22+
// names the columns (from the MySQL 8.0 manual: no MySQL server runs in
// this project's tests to record one from).
var mysqlReplicaStatus = map[string]string{
	"Replica_IO_State": "Waiting for source to send event", "Source_Host": "10.0.0.5", "Source_User": "repl",
	"Source_Port": "3306", "Source_Log_File": "binlog.000010", "Read_Source_Log_Pos": "5000",
	"Relay_Source_Log_File": "binlog.000009", "Replica_IO_Running": "Yes", "Replica_SQL_Running": "Yes",
	"Exec_Source_Log_Pos": "157", "Source_Server_Id": "11", "Last_IO_Error": "", "Last_SQL_Error": "",
	"Executed_Gtid_Set": "3E11FA47-71CA-11E1-9E33-C80AA9429562:1-5", "Source_UUID": "3e11fa47-71ca-11e1-9e33-c80aa9429562",
}

func TestParseReplicaStatus(t *testing.T) {
	st, err := parseReplicaStatus(mariadbSlaveStatus)
	if err != nil {
		t.Fatal(err)
	}
	want := ReplicaStatus{IORunning: "Yes", SQLRunning: "No", MasterFile: "mysql-bin.000002", ExecPos: 4711, MasterServerID: 1,
		LastSQLErrno: 1062, LastSQLError: "Duplicate entry"}
	if st != want {
		t.Errorf("MariaDB: %+v, want %+v", st, want)
	}
	st, err = parseReplicaStatus(mysqlReplicaStatus)
	if err != nil {
		t.Fatal(err)
	}
	want = ReplicaStatus{IORunning: "Yes", SQLRunning: "Yes", MasterFile: "binlog.000009", ExecPos: 157, MasterServerID: 11,
		MasterUUID: "3e11fa47-71ca-11e1-9e33-c80aa9429562"}
	if st != want {
		t.Errorf("MySQL: %+v, want %+v", st, want)
	}
	// MySQL before 8.0.22 uses MariaDB's names.
	bad := map[string]string{"Slave_IO_Running": "Yes", "Slave_SQL_Running": "No", "Relay_Master_Log_File": "f"}
	if _, err := parseReplicaStatus(bad); err == nil || !strings.Contains(err.Error(), "columns") {
		t.Errorf("missing Exec_Master_Log_Pos accepted: %v", err)
	}
	bad["Exec_Master_Log_Pos"] = "x"
	if _, err := parseReplicaStatus(bad); err == nil {
		t.Errorf("non-numeric position accepted")
	}
}

// TestParseRecordedSlaveStatus reads a SHOW SLAVE STATUS row recorded from
// a MariaDB 10.11 replica whose SQL thread was stopped (every column, as
// testenv returns them).
func TestParseRecordedSlaveStatus(t *testing.T) {
	b, err := os.ReadFile("testdata/mariadb-10.11-show-slave-status.json")
	if err != nil {
		t.Fatal(err)
	}
	var row map[string]string
	if err := json.Unmarshal(b, &row); err != nil {
		t.Fatal(err)
	}
	st, err := parseReplicaStatus(row)
	if err != nil {
		t.Fatal(err)
	}
	want := ReplicaStatus{IORunning: "Yes", SQLRunning: "No", MasterFile: "mysql-bin.000001", ExecPos: 793, MasterServerID: 1}
	if st != want {
		t.Errorf("%+v, want %+v", st, want)
	}
}

func TestVersionAtLeast(t *testing.T) {
	for v, want := range map[string]bool{
		"8.0.22": true, "8.0.21": false, "8.0.35-0ubuntu0.22.04.1": true, "8.4.0": true, "5.7.44-log": false, "9.1.0": true, "x": false,
	} {
		if got := versionAtLeast(v, 8, 0, 22); got != want {
			t.Errorf("versionAtLeast(%q, 8.0.22) = %v", v, got)
		}
	}
}

func TestManifestRoundTrip(t *testing.T) {
	m := &Manifest{
		Version: ManifestVersion, ID: "20261125T031500Z-physical", Method: Physical, Flavor: "mariadb",
		ServerVersion: "10.11.19-MariaDB-log", SourceAddr: "127.0.0.1:3307", SourceServerID: 2, MasterServerID: 1,
		Coordinates: Coordinates{File: "mysql-bin.000002", Pos: 4711, GTIDSet: "0-1-77", From: "replica"},
		Started:     time.Date(2026, 11, 25, 3, 15, 0, 0, time.UTC), Finished: time.Date(2026, 11, 25, 3, 20, 0, 0, time.UTC),
		DataKey: "main/snapshot/20261125T031500Z-physical/backup.xbstream.zst", RawSize: 100, StoredSize: 40,
		SHA256: strings.Repeat("ab", 32), Tool: "mariabackup", ToolVersion: "mariabackup based on MariaDB server 10.11.19",
	}
	b := MarshalManifest(m)
	got, err := UnmarshalManifest(b)
	if err != nil {
		t.Fatal(err)
	}
	if *got != *m {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, m)
	}
	for _, field := range []string{`"coordinates"`, `"gtid_set": "0-1-77"`, `"sha256"`, `"master_server_id": 1`} {
		if !bytes.Contains(b, []byte(field)) {
			t.Errorf("manifest JSON lacks %s:\n%s", field, b)
		}
	}
	if _, err := UnmarshalManifest([]byte(`{"version": 3, "id": "x", "data_key": "k", "sha256": "s", "method": "physical"}`)); err == nil || !strings.Contains(err.Error(), "upgrade") {
		t.Errorf("newer manifest version: %v", err)
	}
	if _, err := UnmarshalManifest([]byte(`{"version": 1, "id": "x", "data_key": "k", "sha256": "s", "method": "tape"}`)); err == nil {
		t.Errorf("unknown method accepted")
	}
	if got := m.Coordinates.String(); got != "mysql-bin.000002:4711 gtid 0-1-77" {
		t.Errorf("Coordinates.String() = %q", got)
	}
}

func TestParseSchedule(t *testing.T) {
	from := time.Date(2026, 11, 25, 3, 15, 0, 0, time.UTC) // a Wednesday
	for expr, want := range map[string]time.Time{
		"@weekly":     time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC),
		"@daily":      time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC),
		"15 3 * * 0":  time.Date(2026, 11, 29, 3, 15, 0, 0, time.UTC),
		"@every 1h":   from.Add(time.Hour),
		"*/5 * * * *": time.Date(2026, 11, 25, 3, 20, 0, 0, time.UTC),
	} {
		s, err := ParseSchedule(expr)
		if err != nil {
			t.Errorf("%q: %v", expr, err)
			continue
		}
		if got := s.Next(from); !got.Equal(want) {
			t.Errorf("%q: next after %v = %v, want %v", expr, from, got, want)
		}
	}
	for _, bad := range []string{"", "weekly", "@fortnightly", "61 * * * *", "* * * *", "0 0 30 2 *"} {
		_, err := ParseSchedule(bad)
		if err == nil {
			t.Errorf("%q accepted", bad)
			continue
		}
		if !strings.Contains(err.Error(), "@weekly") || (bad != "" && !strings.Contains(err.Error(), bad)) {
			t.Errorf("%q: error lacks the expression or the examples: %v", bad, err)
		}
	}
}

func TestXbstreamScanner(t *testing.T) {
	var stream []byte
	stream = append(stream, xbstreamtest.Chunk('P', "ibdata1", bytes.Repeat([]byte{7}, 100000))...)
	stream = append(stream, xbstreamtest.Chunk('P', "ibdata1", []byte("more"))...)
	stream = append(stream, xbstreamtest.Chunk('E', "ibdata1", nil)...)
	stream = append(stream, xbstreamtest.Chunk('P', "xtrabackup_binlog_info", []byte("mysql-bin.000001\t1328\t0-1-6\n"))...)
	stream = append(stream, xbstreamtest.Chunk('E', "xtrabackup_binlog_info", nil)...)
	// Every way of cutting the stream into writes gives the same result.
	for _, step := range []int{1, 3, 13, 4096, len(stream)} {
		x := NewXbstreamScanner()
		for i := 0; i < len(stream); i += step {
			x.Write(stream[i:min(i+step, len(stream))])
		}
		if err := x.Err(true); err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
		if x.chunks != 5 || x.files != 2 {
			t.Errorf("step %d: %d chunks %d files, want 5 and 2", step, x.chunks, x.files)
		}
		c, err := parseBinlogInfo(x.binlogInfo)
		want := Coordinates{File: "mysql-bin.000001", Pos: 1328, GTIDSet: "0-1-6", From: "mariabackup"}
		if err != nil || c != want {
			t.Errorf("step %d: %+v %v, want %+v", step, c, err, want)
		}
	}
	x := NewXbstreamScanner()
	x.Write(stream[:len(stream)-10])
	if err := x.Err(true); err == nil || !strings.Contains(err.Error(), "middle of chunk") {
		t.Errorf("cut stream: %v", err)
	}
	x = NewXbstreamScanner()
	x.Write([]byte("-- MariaDB dump 10.19 and more text"))
	if err := x.Err(false); err == nil {
		t.Errorf("SQL accepted as xbstream")
	}
	if _, err := parseBinlogInfo([]byte("garbage")); err == nil {
		t.Errorf("bad binlog info accepted")
	}
}

func TestDumpScanner(t *testing.T) {
	dump := "-- MariaDB dump 10.19\n--\n-- CHANGE MASTER TO MASTER_USE_GTID=slave_pos;\n" +
		"-- CHANGE MASTER TO MASTER_LOG_FILE='mysql-bin.000001', MASTER_LOG_POS=1526;\n" +
		"INSERT INTO t VALUES ('" + strings.Repeat("-- CHANGE MASTER TO MASTER_LOG_FILE='evil', MASTER_LOG_POS=1;", 200) + "');\n" +
		"-- SET GLOBAL gtid_slave_pos='0-1-7';\n-- Dump completed\n"
	for _, step := range []int{1, 7, 100, len(dump)} {
		d := &dumpScanner{}
		for i := 0; i < len(dump); i += step {
			d.Write([]byte(dump[i:min(i+step, len(dump))]))
		}
		c, err := d.coordinates()
		want := Coordinates{File: "mysql-bin.000001", Pos: 1526, GTIDSet: "0-1-7", From: "dump"}
		if err != nil || c != want {
			t.Errorf("step %d: %+v %v, want %+v", step, c, err, want)
		}
	}
	mysql := "-- CHANGE REPLICATION SOURCE TO SOURCE_LOG_FILE='binlog.000002', SOURCE_LOG_POS=157;\n" +
		"SET @@GLOBAL.GTID_PURGED=/*!80000 '+'*/ '3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5';\n"
	d := &dumpScanner{}
	d.Write([]byte(mysql))
	c, err := d.coordinates()
	if err != nil || c.File != "binlog.000002" || c.Pos != 157 || c.GTIDSet != "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5" {
		t.Errorf("MySQL dump: %+v %v", c, err)
	}
	d = &dumpScanner{}
	d.Write([]byte("-- no coordinates here\n"))
	if _, err := d.coordinates(); err == nil {
		t.Errorf("a dump without coordinates accepted")
	}
}

func TestMissingPrivileges(t *testing.T) {
	need := requiredPrivileges(Physical, true, true)
	if strings.Join(need, ", ") != "RELOAD, PROCESS, BINLOG MONITOR, SLAVE MONITOR, REPLICATION SLAVE ADMIN" {
		t.Fatalf("physical on a replica needs %v", need)
	}
	cases := []struct {
		grants  []string
		missing string
	}{
		{[]string{"GRANT USAGE ON *.* TO `bk`@`%` IDENTIFIED BY PASSWORD '*X'"}, "RELOAD, PROCESS, BINLOG MONITOR, SLAVE MONITOR, REPLICATION SLAVE ADMIN"},
		{[]string{"GRANT RELOAD, PROCESS, BINLOG MONITOR, SLAVE MONITOR, REPLICATION SLAVE ADMIN ON *.* TO `bk`@`%`"}, ""},
		{[]string{"GRANT RELOAD, PROCESS, REPLICATION CLIENT, REPLICA MONITOR ON *.* TO `bk`@`%`"}, "REPLICATION SLAVE ADMIN"},
		{[]string{"GRANT RELOAD, PROCESS, SUPER ON *.* TO `bk`@`%`"}, ""},
		{[]string{"GRANT ALL PRIVILEGES ON *.* TO `root`@`localhost` WITH GRANT OPTION"}, ""},
		{[]string{"GRANT RELOAD, PROCESS ON *.* TO `bk`@`%`", "GRANT ALL PRIVILEGES ON `app`.* TO `bk`@`%`"}, "BINLOG MONITOR, SLAVE MONITOR, REPLICATION SLAVE ADMIN"},
	}
	for _, c := range cases {
		if got := strings.Join(missingPrivileges(c.grants, need), ", "); got != c.missing {
			t.Errorf("%q: missing %q, want %q", c.grants, got, c.missing)
		}
	}
	if got := strings.Join(requiredPrivileges(Logical, false, false), ", "); got != "SELECT, SHOW VIEW, TRIGGER, EVENT, RELOAD, BINLOG MONITOR, SLAVE MONITOR" {
		t.Errorf("logical of a primary needs %s", got)
	}
}

func TestOptionValue(t *testing.T) {
	for in, want := range map[string]string{
		`pw`: `"pw"`, `a"b`: `"a\"b"`, `a\b`: `"a\\b"`, "a#b;c": `"a#b;c"`, "x\ny": `"x\ny"`,
	} {
		if got := optionValue(in); got != want {
			t.Errorf("optionValue(%q) = %s, want %s", in, got, want)
		}
	}
}

// TestManifestSanity: a manifest from the bucket whose fields cannot be a
// snapshot binarc took is refused when parsed, naming the field, so that
// restore --dry-run and verify never call it sound (the GTID set parsed
// as restore parses it).
func TestManifestSanity(t *testing.T) {
	good := func() *Manifest {
		return &Manifest{
			Version: ManifestVersion, ID: "20261125T031500Z-physical", Method: Physical, Flavor: "mariadb",
			Coordinates: Coordinates{File: "mysql-bin.000002", Pos: 4711, GTIDSet: "0-1-77", From: "replica"},
			Started:     time.Date(2026, 11, 25, 3, 15, 0, 0, time.UTC), Finished: time.Date(2026, 11, 25, 3, 20, 0, 0, time.UTC),
			DataKey: "main/snapshot/20261125T031500Z-physical/backup.xbstream.zst", RawSize: 100, StoredSize: 40,
			SHA256: strings.Repeat("ab", 32),
		}
	}
	if _, err := UnmarshalManifest(MarshalManifest(good())); err != nil {
		t.Fatalf("a sound manifest: %v", err)
	}
	for name, c := range map[string]struct {
		change func(*Manifest)
		want   string
	}{
		"negative raw size":     {func(m *Manifest) { m.RawSize = -1 }, "sizes raw -1"},
		"2^62 stored size":      {func(m *Manifest) { m.StoredSize = 1 << 62 }, "stored 4611686018427387904"},
		"empty stored object":   {func(m *Manifest) { m.StoredSize = 0 }, "stored 0"},
		"short digest":          {func(m *Manifest) { m.SHA256 = "abc" }, `sha256 "abc"`},
		"uppercase digest":      {func(m *Manifest) { m.SHA256 = strings.Repeat("AB", 32) }, "64 lowercase hexadecimal"},
		"another snapshot data": {func(m *Manifest) { m.DataKey = "main/snapshot/20261001T000000Z-physical/backup.xbstream.zst" }, "data_key"},
		"data key climbing out": {func(m *Manifest) { m.DataKey = "../../20261125T031500Z-physical/backup.xbstream.zst" }, "data_key"},
		"logical name physical": {func(m *Manifest) { m.DataKey = "main/snapshot/20261125T031500Z-physical/dump.sql.zst" }, "backup.xbstream.zst"},
		"bad id":                {func(m *Manifest) { m.ID = "yesterday" }, "not a snapshot id"},
		"bad gtid_set":          {func(m *Manifest) { m.Coordinates.GTIDSet = "0-1-x" }, `gtid_set "0-1-x"`},
		"bad server gtid":       {func(m *Manifest) { m.ServerGTID = &ServerGTID{CurrentPos: "zz"} }, `"zz"`},
		"position 0":            {func(m *Manifest) { m.Coordinates.Pos = 0 }, "not a binlog position"},
		"no file":               {func(m *Manifest) { m.Coordinates.File = "" }, "not a binlog position"},
		"finished first":        {func(m *Manifest) { m.Finished = m.Started.Add(-time.Hour) }, "before it started"},
	} {
		m := good()
		c.change(m)
		_, err := UnmarshalManifest(MarshalManifest(m))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want a refusal naming %q", name, err, c.want)
		}
	}
}

// TestExecutedCoordinates: a replica that has executed nothing from its
// primary (replication reset, or its IO thread failed at once after a
// hard flip) is refused before any backup: its manifest would carry no
// coordinates a restore could start from (the fault campaign's seed 99
// wrote five such snapshots).
func TestExecutedCoordinates(t *testing.T) {
	if err := executedCoordinates("r:3306", ReplicaStatus{MasterFile: "mysql-bin.000007", ExecPos: 4711}); err != nil {
		t.Fatalf("a replica with coordinates: %v", err)
	}
	for _, st := range []ReplicaStatus{{}, {MasterFile: "", ExecPos: 4}, {MasterFile: "mysql-bin.000007", ExecPos: 0}} {
		err := executedCoordinates("r:3306", st)
		if err == nil || !strings.Contains(err.Error(), "r:3306") || !strings.Contains(err.Error(), "SHOW SLAVE STATUS") {
			t.Errorf("%+v: %v, want a refusal naming the replica and the way out", st, err)
		}
	}
}
