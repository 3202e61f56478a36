package replication

import (
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	gomysql "github.com/go-mysql-org/go-mysql/replication"
)

type recorder struct {
	events []Event
	done   [][2]string
	beats  []Position
}

func (r *recorder) Event(ev Event) error {
	ev.Raw = append([]byte(nil), ev.Raw...)
	r.events = append(r.events, ev)
	return nil
}
func (r *recorder) FileDone(file, next string) error {
	r.done = append(r.done, [2]string{file, next})
	return nil
}
func (r *recorder) Heartbeat(p Position) { r.beats = append(r.beats, p) }

// ev builds a go-mysql event as the syncer hands it over in raw mode.
func ev(t gomysql.EventType, size int, logPos uint32, flags uint16) *gomysql.BinlogEvent {
	raw := make([]byte, size)
	raw[4] = byte(t)
	binary.LittleEndian.PutUint32(raw[9:], uint32(size))
	binary.LittleEndian.PutUint32(raw[13:], logPos)
	binary.LittleEndian.PutUint16(raw[17:], flags)
	return &gomysql.BinlogEvent{RawData: raw, Header: &gomysql.EventHeader{EventType: t, EventSize: uint32(size), LogPos: logPos, Flags: flags}}
}

func rotate(next string, pos uint64, logPos uint32, flags uint16) *gomysql.BinlogEvent {
	e := ev(gomysql.ROTATE_EVENT, HeaderLen+8+len(next), logPos, flags)
	e.Event = &gomysql.RotateEvent{Position: pos, NextLogName: []byte(next)}
	return e
}

func feed(t *testing.T, st *streamState, evs ...*gomysql.BinlogEvent) error {
	t.Helper()
	for _, e := range evs {
		if err := st.HandleEvent(e); err != nil {
			return err
		}
	}
	return nil
}

func TestStreamFromFileStart(t *testing.T) {
	r := &recorder{}
	st := &streamState{pos: Position{File: "mysql-bin.000001"}, h: r, flavor: FlavorMariaDB}
	err := feed(t, st,
		rotate("mysql-bin.000001", 4, 0, gomysql.LOG_EVENT_ARTIFICIAL_F), // fake rotate at connect
		ev(gomysql.FORMAT_DESCRIPTION_EVENT, 100, 104, 0),
		ev(gomysql.MARIADB_GTID_LIST_EVENT, 30, 0, gomysql.LOG_EVENT_ARTIFICIAL_F), // artificial: not in the file
		ev(gomysql.HEARTBEAT_EVENT, 40, 104, 0),
		ev(gomysql.QUERY_EVENT, 50, 154, 0),
		rotate("mysql-bin.000002", 4, 154+19+8+16, 0), // real rotate: last event of the file
		ev(gomysql.FORMAT_DESCRIPTION_EVENT, 100, 104, 0),
	)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range r.events {
		got = append(got, e.File+":"+e.Type.String())
	}
	want := "mysql-bin.000001:FormatDescriptionEvent mysql-bin.000001:QueryEvent mysql-bin.000001:RotateEvent mysql-bin.000002:FormatDescriptionEvent"
	if strings.Join(got, " ") != want {
		t.Fatalf("archived %v\nwant %s", got, want)
	}
	if r.events[0].Start != 4 || r.events[1].Start != 104 || r.events[2].End != 154+19+8+16 {
		t.Fatalf("coordinates: %+v", r.events[:3])
	}
	if len(r.done) != 1 || r.done[0] != [2]string{"mysql-bin.000001", "mysql-bin.000002"} {
		t.Fatalf("file ends: %v", r.done)
	}
	if len(r.beats) != 1 || r.beats[0].Offset != 104 {
		t.Fatalf("heartbeats: %v", r.beats)
	}
}

func TestStreamResumeChecksFormatDescription(t *testing.T) {
	archived := ev(gomysql.FORMAT_DESCRIPTION_EVENT, 100, 104, 0).RawData
	copy(archived[HeaderLen+2:], "10.11.19-MariaDB")
	resent := append([]byte(nil), archived...)
	binary.LittleEndian.PutUint32(resent[13:], 0) // log_pos zeroed in the resent copy
	fakeFDE := &gomysql.BinlogEvent{RawData: resent, Header: &gomysql.EventHeader{EventType: gomysql.FORMAT_DESCRIPTION_EVENT, EventSize: 100}}

	r := &recorder{}
	st := &streamState{pos: Position{File: "mysql-bin.000003", Offset: 500}, expectFDE: archived, h: r, flavor: FlavorMariaDB}
	if err := feed(t, st, rotate("mysql-bin.000003", 500, 0, gomysql.LOG_EVENT_ARTIFICIAL_F), fakeFDE, ev(gomysql.QUERY_EVENT, 60, 560, 0)); err != nil {
		t.Fatal(err)
	}
	if len(r.events) != 1 || r.events[0].Start != 500 {
		t.Fatalf("resent FDE archived again, or wrong start: %+v", r.events)
	}

	// A different file under the same name (RESET MASTER, another server).
	other := append([]byte(nil), resent...)
	copy(other[HeaderLen+2:], "10.6.1-MariaDB")
	st = &streamState{pos: Position{File: "mysql-bin.000003", Offset: 500}, expectFDE: archived, h: &recorder{}}
	err := feed(t, st, rotate("mysql-bin.000003", 500, 0, gomysql.LOG_EVENT_ARTIFICIAL_F),
		&gomysql.BinlogEvent{RawData: other, Header: &gomysql.EventHeader{EventType: gomysql.FORMAT_DESCRIPTION_EVENT, EventSize: 100}})
	var be *BreakError
	if !errors.As(err, &be) {
		t.Fatalf("want a BreakError for a different file, got %v", err)
	}
}

func TestStreamRefusesSkippedBytes(t *testing.T) {
	st := &streamState{pos: Position{File: "mysql-bin.000001", Offset: 200}, h: &recorder{}}
	err := feed(t, st, rotate("mysql-bin.000001", 200, 0, gomysql.LOG_EVENT_ARTIFICIAL_F), ev(gomysql.QUERY_EVENT, 50, 300, 0))
	if err == nil || !strings.Contains(err.Error(), "skipped or repeated") {
		t.Fatalf("an event ending at 300 after offset 200 with size 50 must fail: %v", err)
	}
	st = &streamState{pos: Position{File: "mysql-bin.000001", Offset: 200}, h: &recorder{}}
	if err := feed(t, st, rotate("mysql-bin.000001", 180, 0, gomysql.LOG_EVENT_ARTIFICIAL_F)); err == nil {
		t.Fatal("a stream starting elsewhere than asked must fail")
	}
}

// TestStreamFollowsStopThenFakeRotate: a file closed by a restart ends
// with STOP; the server then moves to the next file with a fake rotate.
func TestStreamFollowsStopThenFakeRotate(t *testing.T) {
	r := &recorder{}
	st := &streamState{pos: Position{File: "mysql-bin.000004", Offset: 300}, h: r, flavor: FlavorMariaDB}
	err := feed(t, st,
		rotate("mysql-bin.000004", 300, 0, gomysql.LOG_EVENT_ARTIFICIAL_F),
		ev(gomysql.STOP_EVENT, 23, 323, 0),
		rotate("mysql-bin.000005", 4, 0, gomysql.LOG_EVENT_ARTIFICIAL_F),
		ev(gomysql.FORMAT_DESCRIPTION_EVENT, 100, 104, 0),
	)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.done) != 1 || r.done[0][1] != "mysql-bin.000005" || r.events[1].File != "mysql-bin.000005" || r.events[1].Start != 4 {
		t.Fatalf("done %v events %+v", r.done, r.events)
	}
	// Going backwards is never a continuation.
	st = &streamState{pos: Position{File: "mysql-bin.000009", Offset: 300}, h: &recorder{}}
	err = feed(t, st, rotate("mysql-bin.000009", 300, 0, gomysql.LOG_EVENT_ARTIFICIAL_F), ev(gomysql.QUERY_EVENT, 20, 320, 0),
		rotate("mysql-bin.000001", 4, 0, gomysql.LOG_EVENT_ARTIFICIAL_F))
	var be *BreakError
	if !errors.As(err, &be) {
		t.Fatalf("rotate backwards: %v", err)
	}
}

func TestParseSourceURL(t *testing.T) {
	c, err := ParseSourceURL("mysql://repl:pa%40ss@db.example:3307")
	if err != nil || c.User != "repl" || c.Password != "pa@ss" || c.Port != 3307 || c.Host != "db.example" {
		t.Fatalf("%+v %v", c, err)
	}
	if strings.Contains(c.String(), "pa@ss") {
		t.Fatal("String() shows the password")
	}
	c, err = ParseSourceURL("mysql://repl@[::1]")
	if err != nil || c.Port != 3306 || c.Host != "::1" {
		t.Fatalf("%+v %v", c, err)
	}
	for _, bad := range []string{"", "postgres://u@h", "mysql://h:3306", "mysql://u@:3306", "mysql://u@h:99999", "mysql://u:se%cret@h",
		"mysql://u:secret@h/db?x=1", "mysql://u:secret@h:33o6", "mysql://u:1234/secret@h:99999"} {
		_, err := ParseSourceURL(bad)
		if err == nil {
			t.Errorf("%q accepted", bad)
		} else if strings.Contains(err.Error(), "se%cret") || strings.Contains(err.Error(), "secret") {
			t.Errorf("%q: error leaks the password: %v", bad, err)
		}
	}
}

// TestParseSourceURLPasswordText: the userinfo is cut off as text, so a
// password holding '/', '#' or '?' is read whole, never split into a host.
func TestParseSourceURLPasswordText(t *testing.T) {
	for raw, pass := range map[string]string{
		"mysql://binarc:1234/topsecret@db1": "1234/topsecret",
		"mysql://binarc:s3cr#et@db1":        "s3cr#et",
		"mysql://binarc:a?b@c@db1":          "a?b@c",
	} {
		c, err := ParseSourceURL(raw)
		if err != nil || c.Password != pass || c.Host != "db1" || c.User != "binarc" {
			t.Errorf("%q: %+v %v", raw, c, err)
		}
		if strings.Contains(Redact(raw), pass) {
			t.Errorf("Redact(%q) = %q", raw, Redact(raw))
		}
	}
}

func TestBinlogNameOrder(t *testing.T) {
	if CompareBinlogNames("b.999999", "b.1000000") >= 0 || CompareBinlogNames("b.000010", "b.000009") <= 0 || CompareBinlogNames("b.000001", "b.000001") != 0 {
		t.Fatal("binlog names must order by sequence number")
	}
}
