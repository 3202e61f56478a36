package redact

import (
	"strings"
	"testing"
)

func TestURL(t *testing.T) {
	for _, c := range []struct{ raw, want, secret string }{
		{"mysql://binarc:1234/topsecret@db1", "mysql://binarc:xxxxx@db1", "topsecret"},
		{"mysql://binarc:s3cr#et@db1:3306", "mysql://binarc:xxxxx@db1:3306", "s3cr"},
		{"mysql://binarc:p@ss?w@rd@db1", "mysql://binarc:xxxxx@db1", "ss"},
		{"mysql://binarc@db1", "mysql://binarc@db1", ""},
		{"s3://key:se/cret@bucket/prefix?endpoint=http://x", "s3://key:xxxxx@bucket/prefix?endpoint=http://x", "cret"},
		{"mysql://db1:3306", "mysql://db1:3306", ""},
	} {
		got := URL(c.raw)
		if got != c.want || (c.secret != "" && strings.Contains(got, c.secret)) {
			t.Errorf("URL(%q) = %q; want %q", c.raw, got, c.want)
		}
	}
	user, pass, host, hasPass, ok := SplitURL("mysql://binarc:1234/topsecret@db1:3307")
	if !ok || !hasPass || user != "binarc" || pass != "1234/topsecret" || host != "mysql://db1:3307" {
		t.Errorf("SplitURL: %q %q %q %v %v", user, pass, host, hasPass, ok)
	}
}

func TestStatement(t *testing.T) {
	for _, c := range []struct{ in, secret string }{
		{"CREATE USER 'app'@'%' IDENTIFIED BY 'hunter2'", "hunter2"},
		{"create user app identified by 'it''s \\'x' ; grant all", "it"},
		{"ALTER USER app IDENTIFIED BY PASSWORD '*2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19'", "2470C0C"},
		{"CREATE USER app IDENTIFIED VIA mysql_native_password USING PASSWORD('hunter2')", "hunter2"},
		{"CREATE USER app IDENTIFIED VIA ed25519 USING 'hunter2'", "hunter2"},
		{"SET PASSWORD FOR 'app'@'%' = PASSWORD('hunter2')", "hunter2"},
		{"SET PASSWORD = 'hunter2'", "hunter2"},
		{"CHANGE MASTER TO MASTER_PASSWORD='hunter2'", "hunter2"},
	} {
		got := Statement(c.in)
		if strings.Contains(got, c.secret) || !strings.Contains(got, "<redacted>") {
			t.Errorf("Statement(%q) = %q: the password shows", c.in, got)
		}
	}
	got := Statement("INSERT INTO t VALUES ('\x1b[2K\x1b[1Aerased\r\x07', 'ok é')")
	if strings.ContainsAny(got, "\x1b\r\x07") || !strings.Contains(got, `\x1b[2K`) || !strings.Contains(got, "ok é") {
		t.Errorf("control characters not escaped: %q", got)
	}
	if got := Statement("a\xffb"); got != `a\xffb` {
		t.Errorf("invalid UTF-8: %q", got)
	}
}
