package drill

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/archive/objstore"
	"github.com/rs/zerolog"
)

func TestWhereExpandsTheKey(t *testing.T) {
	tb := table{Schema: "app", Name: "t", Cols: []string{"a", "b", "c"}, PK: []string{"a", "b"}}
	where, args := tb.where(chunk{Lower: []any{1, "x"}, Upper: []any{5, "y"}})
	want := "1 AND ((`a` > ?) OR (`a` = ? AND `b` > ?)) AND NOT ((`a` > ?) OR (`a` = ? AND `b` > ?))"
	if where != want {
		t.Errorf("where =\n %s\nwant\n %s", where, want)
	}
	if len(args) != 6 || args[0] != 1 || args[2] != "x" || args[5] != "y" {
		t.Errorf("args = %v", args)
	}
	if w, a := tb.where(chunk{}); w != "1" || a != nil {
		t.Errorf("whole table: %q %v", w, a)
	}
	if h := tb.rowHash(); !strings.Contains(h, "CONCAT(ISNULL(`a`), ISNULL(`b`), ISNULL(`c`))") {
		t.Errorf("row hash leaves out the NULL map: %s", h)
	}
	odd := table{Schema: "we`ird", Name: "t"}
	if q := odd.quoted(); q != "`we``ird`.`t`" {
		t.Errorf("quoted = %s", q)
	}
}

func TestChunkerAimsAtTheTarget(t *testing.T) {
	c := chunker{target: 250 * time.Millisecond, rows: 1000}
	c.adjust(500*time.Millisecond, 1000)
	if c.rows != 500 {
		t.Errorf("a chunk twice too slow: %d rows next; want 500", c.rows)
	}
	c.adjust(time.Nanosecond, 500)
	if c.rows != 1_000_000 {
		t.Errorf("bounded above: %d", c.rows)
	}
	c.adjust(time.Hour, 1)
	if c.rows != 100 {
		t.Errorf("bounded below: %d", c.rows)
	}
}

func report(at time.Time, statuses ...string) *Report {
	r := &Report{Version: RecordVersion, Cluster: "main", Started: at, Finished: at.Add(time.Minute), Mode: "replica", RestoreSeconds: 252}
	for i, s := range statuses {
		r.Tables = append(r.Tables, TableResult{Table: "app.t" + string(rune('a'+i)), Status: s})
	}
	return r
}

func TestRecordsRoundTripAndSummary(t *testing.T) {
	ctx := context.Background()
	store := objstore.NewMemory()
	l := archive.Layout{Cluster: "main"}
	if r, err := Last(ctx, store, l); r != nil || err != nil {
		t.Fatalf("no records: %v %v", r, err)
	}
	t0 := time.Date(2026, 12, 1, 4, 0, 0, 0, time.UTC)
	for _, r := range []*Report{report(t0, Equal, Equal), report(t0.Add(24*time.Hour), Equal, Different)} {
		if _, err := Store(ctx, store, l, r); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Store(ctx, store, l, report(t0, Equal)); !errors.Is(err, objstore.ErrExist) {
		t.Errorf("a second record at the same second: %v; want ErrExist", err)
	}
	last, err := Last(ctx, store, l)
	if err != nil || last.Outcome() != Different {
		t.Fatalf("Last = %+v, %v", last, err)
	}
	if s := last.Summary(); s != "last drill: 2026-12-02 04:00:00Z, different (1 of 2 tables), RTO 4m12s" {
		t.Errorf("Summary = %q", s)
	}
	ok, err := LastSuccess(ctx, store, l)
	if err != nil || ok == nil || !ok.Started.Equal(t0) {
		t.Fatalf("LastSuccess = %+v, %v", ok, err)
	}
	if s := ok.Summary(); s != "last drill: 2026-12-01 04:00:00Z, equal (2 tables, replica), RTO 4m12s" {
		t.Errorf("Summary = %q", s)
	}
	var m Metrics
	m.Seed(ctx, zerolog.Nop(), store, l)
	if m.success != ok && (m.success == nil || !m.success.Started.Equal(t0)) || m.last.Count(Different) != 1 {
		t.Errorf("metrics seeded with %+v / %+v", m.success, m.last)
	}
}

func TestUnmarshalReportRefuses(t *testing.T) {
	for name, body := range map[string]string{
		"not json":      "{",
		"no version":    `{"started":"2026-12-01T04:00:00Z","finished":"2026-12-01T04:00:00Z"}`,
		"newer version": `{"version":99,"started":"2026-12-01T04:00:00Z","finished":"2026-12-01T04:00:00Z"}`,
		"no start":      `{"version":1}`,
		"backwards":     `{"version":1,"started":"2026-12-01T04:00:00Z","finished":"2026-11-01T04:00:00Z"}`,
		"huge restore":  `{"version":1,"started":"2026-12-01T04:00:00Z","finished":"2026-12-01T04:00:00Z","restore_seconds":1e12}`,
	} {
		if _, err := UnmarshalReport([]byte(body)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
