package replication

import (
	"strings"
	"testing"
)

func TestTLSOptionsValidate(t *testing.T) {
	for _, c := range []struct {
		o    TLSOptions
		want string
	}{
		{TLSOptions{Mode: "sometimes"}, "use disable, preferred"},
		{TLSOptions{Mode: TLSRequired, Cert: "c.pem"}, "go together"},
		{TLSOptions{Mode: TLSDisable, CA: "ca.pem"}, "would not be used"},
		{TLSOptions{Mode: TLSVerifyFull, CA: "/nonexistent/ca.pem"}, "--source-tls-ca"},
		{TLSOptions{Mode: TLSVerifyCA, CA: "tls_test.go"}, "holds no PEM certificate"},
	} {
		if err := c.o.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.o, err, c.want)
		}
	}
	for _, m := range []TLSMode{"", TLSDisable, TLSPreferred, TLSRequired, TLSVerifyCA, TLSVerifyFull} {
		if err := (TLSOptions{Mode: m}).Validate(); err != nil {
			t.Errorf("mode %q: %v", m, err)
		}
	}
}

func TestTLSOptionFileLines(t *testing.T) {
	for _, c := range []struct {
		o    TLSOptions
		want string
	}{
		{TLSOptions{}, ""},
		{TLSOptions{Mode: TLSDisable}, "skip-ssl\n"},
		{TLSOptions{Mode: TLSRequired}, "ssl\n"},
		{TLSOptions{Mode: TLSVerifyCA, CA: "/etc/ca.pem"}, "ssl\nssl-ca=\"/etc/ca.pem\"\n"},
		{TLSOptions{Mode: TLSVerifyFull, CA: "/etc/ca.pem", Cert: "c", Key: "k"}, "ssl\nssl-ca=\"/etc/ca.pem\"\nssl-cert=\"c\"\nssl-key=\"k\"\nssl-verify-server-cert\n"},
	} {
		if got := c.o.OptionFileLines(); got != c.want {
			t.Errorf("%+v: %q, want %q", c.o, got, c.want)
		}
	}
}
