package replication

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

// TestSourcesParse: every server of a source gets the same user, password,
// server id and TLS settings, and the password comes from the file, then
// the environment, then the URL.
func TestSourcesParse(t *testing.T) {
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwFile, []byte("from-file\r\nsecond line\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ca := writeTestCA(t, dir)
	verifyFull := TLSOptions{Mode: TLSVerifyFull, CA: ca, Flag: "--source-tls"}
	for _, c := range []struct {
		name      string
		s         Sources
		addrs     []string
		password  string
		tls       TLSOptions
		urlWarned bool
	}{
		{name: "one host, defaults", s: Sources{URL: "mysql://u@db1", ServerID: 4207},
			addrs: []string{"db1:3306"}, tls: TLSOptions{Flag: "--source-tls"}},
		{name: "TLS on every host", s: Sources{URL: "mysql://u@db1:3307,db2,db3:3308", ServerID: 9, TLS: verifyFull},
			addrs: []string{"db1:3307", "db2:3306", "db3:3308"}, tls: verifyFull},
		{name: "URL password", s: Sources{URL: "mysql://u:in-url@db1,db2", ServerID: 9},
			addrs: []string{"db1:3306", "db2:3306"}, password: "in-url", tls: TLSOptions{Flag: "--source-tls"}, urlWarned: true},
		{name: "environment over URL", s: Sources{URL: "mysql://u:in-url@db1,db2", ServerID: 9, Password: PasswordFrom{Env: "from-env", EnvSet: true}},
			addrs: []string{"db1:3306", "db2:3306"}, password: "from-env", tls: TLSOptions{Flag: "--source-tls"}, urlWarned: true},
		{name: "empty environment over URL", s: Sources{URL: "mysql://u:in-url@db1", ServerID: 9, Password: PasswordFrom{EnvSet: true}},
			addrs: []string{"db1:3306"}, password: "", tls: TLSOptions{Flag: "--source-tls"}, urlWarned: true},
		{name: "file over environment and URL, several hosts", s: Sources{URL: "mysql://u:in-url@db1,db2", ServerID: 9,
			Password: PasswordFrom{File: pwFile, Env: "from-env", EnvSet: true}},
			addrs: []string{"db1:3306", "db2:3306"}, password: "from-file", tls: TLSOptions{Flag: "--source-tls"}, urlWarned: true},
		{name: "file over environment, one host", s: Sources{URL: "mysql://u@db1", ServerID: 9,
			Password: PasswordFrom{File: pwFile, Env: "from-env", EnvSet: true}},
			addrs: []string{"db1:3306"}, password: "from-file", tls: TLSOptions{Flag: "--source-tls"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var logged bytes.Buffer
			c.s.Log = zerolog.New(&logged)
			cfgs, err := c.s.Parse()
			if err != nil {
				t.Fatal(err)
			}
			if len(cfgs) != len(c.addrs) {
				t.Fatalf("%d servers, want %d", len(cfgs), len(c.addrs))
			}
			for i, cfg := range cfgs {
				if cfg.Addr() != c.addrs[i] || cfg.User != "u" || cfg.Password != c.password || cfg.ServerID != c.s.ServerID || cfg.TLS != c.tls {
					t.Errorf("server %d: %s user %q password ok %v id %d TLS %+v; want %s, TLS %+v",
						i, cfg.Addr(), cfg.User, cfg.Password == c.password, cfg.ServerID, cfg.TLS, c.addrs[i], c.tls)
				}
			}
			if warned := strings.Contains(logged.String(), "carries a password"); warned != c.urlWarned {
				t.Errorf("warning about the URL's password: %v, want %v (%s)", warned, c.urlWarned, logged.String())
			}
			if c.password != "" && strings.Contains(logged.String(), c.password) {
				t.Errorf("the password is in the log: %s", logged.String())
			}
		})
	}
}

// TestSourcesParseRefuses: each bad setting is refused naming its flag,
// and no error shows the password.
func TestSourcesParseRefuses(t *testing.T) {
	for _, c := range []struct {
		s    Sources
		want string
	}{
		{Sources{ServerID: 9}, "--source: no source given"},
		{Sources{URL: "mysql://u:secret@db1,db1", ServerID: 9}, "names db1:3306 twice"},
		{Sources{URL: "mysql://u@db1", ServerID: 0}, "--server-id 0"},
		{Sources{URL: "mysql://u:secret@db1,db2", ServerID: 9, Password: PasswordFrom{File: "/nonexistent/pw", FileFlag: "--source-password-file"}}, "--source-password-file: open /nonexistent/pw"},
		{Sources{URL: "mysql://u@db1,db2", ServerID: 9, TLS: TLSOptions{Mode: TLSVerifyFull, CA: "/nonexistent/ca.pem"}}, "--source-tls-ca"},
		{Sources{URL: "mysql://u@db1,db2", ServerID: 9, TLS: TLSOptions{Mode: "sometimes"}}, "--source-tls \"sometimes\""},
		{Sources{URL: "mysql://u@db1,db2", ServerID: 9, TLS: TLSOptions{Mode: TLSRequired, Cert: "c.pem"}}, "go together"},
	} {
		_, err := c.s.Parse()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", Redact(c.s.URL), err, c.want)
		} else if strings.Contains(err.Error(), "secret") {
			t.Errorf("%s: the error shows the password: %v", Redact(c.s.URL), err)
		}
	}
}

// TestSourcesParseOne: commands that read one server refuse several and
// apply the same settings as Parse.
func TestSourcesParseOne(t *testing.T) {
	s := Sources{URL: "mysql://u:in-url@db1:3307", ServerID: 9, Password: PasswordFrom{Env: "from-env", EnvSet: true}, TLS: TLSOptions{Mode: TLSRequired}}
	cfg, err := s.ParseOne()
	if err != nil || cfg.Addr() != "db1:3307" || cfg.Password != "from-env" || cfg.ServerID != 9 || cfg.TLS.Mode != TLSRequired {
		t.Fatalf("%s %d %+v %v", cfg.Addr(), cfg.ServerID, cfg.TLS, err)
	}
	s.URL = "mysql://u@db1,db2"
	if _, err := s.ParseOne(); err == nil || !strings.Contains(err.Error(), "--source: ") || !strings.Contains(err.Error(), "several servers") {
		t.Fatalf("several servers: %v", err)
	}
}
