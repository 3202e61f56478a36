package restore

import (
	"strings"
	"testing"
	"time"
)

func TestParseTarget(t *testing.T) {
	paris, _ := time.LoadLocation("Europe/Paris")
	cases := []struct {
		in   string
		want Target
	}{
		{"2026-11-20T13:45:00Z", Target{Kind: TargetTime, Time: time.Date(2026, 11, 20, 13, 45, 0, 0, time.UTC)}},
		{"2026-11-20T14:45:00+01:00", Target{Kind: TargetTime, Time: time.Date(2026, 11, 20, 13, 45, 0, 0, time.UTC)}},
		{"2026-11-20 14:45:00 Europe/Paris", Target{Kind: TargetTime, Time: time.Date(2026, 11, 20, 14, 45, 0, 0, paris)}},
		{"mysql-bin.000042:1187", Target{Kind: TargetPosition}},
		{"0-1-2345", Target{Kind: TargetGTID, GTID: "0-1-2345"}},
		{"3E11FA47-71CA-11E1-9E33-C80AA9429562:23", Target{Kind: TargetGTID, GTID: "3E11FA47-71CA-11E1-9E33-C80AA9429562:23"}},
		{"latest", Target{Kind: TargetLatest}},
	}
	for _, c := range cases {
		got, err := ParseTarget(c.in)
		if err != nil {
			t.Errorf("%q: %v", c.in, err)
			continue
		}
		if got.Kind != c.want.Kind || !got.Time.Equal(c.want.Time) || got.GTID != c.want.GTID {
			t.Errorf("%q: got %+v", c.in, got)
		}
	}
	if p, _ := ParseTarget("mysql-bin.000042:1187"); p.Position.File != "mysql-bin.000042" || p.Position.Offset != 1187 {
		t.Errorf("position: %+v", p)
	}
	if p, _ := ParseTarget("000002-20261125T031500Z/mysql-bin.000042:1187"); p.Timeline != "000002-20261125T031500Z" || p.Position.File != "mysql-bin.000042" || p.Position.Offset != 1187 {
		t.Errorf("position on a timeline: %+v", p)
	}
	for in, want := range map[string]string{
		"nosuch/mysql-bin.000042:1187": "not a timeline name",
		"2026-11-20 13:45:00":          "no zone",
		"2026-11-20T13:45:00":          "no zone",
		"yesterday":                    "not understood",
		"mysql-bin.000042:x":           "not a position",
		"mysql-bin.000042:2":           "not a position",
		"":                             "no restore target",
		"2026-13-45T99:00:00Z":         "not understood",
		"2026-11-20 13:45 Mars":        "not understood",
	} {
		_, err := ParseTarget(in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err %v, want it to say %q", in, err, want)
		}
	}
}
