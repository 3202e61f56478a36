package replication

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/binarc/binarc/internal/redact"
	"github.com/rs/zerolog"
)

// Config says where the primary is and how to register with it.
type Config struct {
	Host     string
	Port     uint16
	User     string
	Password string // never logged; String() leaves it out
	// ServerID is the server_id binarc registers with. It must differ from
	// the primary's and every real replica's.
	ServerID uint32
	// HeartbeatPeriod asks the primary for a heartbeat when it has nothing
	// to send, so an idle primary can be told apart from a dead link.
	HeartbeatPeriod time.Duration
	// ReadTimeout ends a connection that has received nothing (not even a
	// heartbeat) for this long; it is what notices a network partition.
	ReadTimeout time.Duration
	// TLS says whether and how the connection is encrypted.
	TLS TLSOptions
	// Log receives warnings about connections to this server (a server
	// answering without TLS in preferred mode); the zero Logger drops them.
	Log zerolog.Logger
}

// DefaultServerID is the server_id binarc registers with unless told
// otherwise. It is high so it rarely collides with real replicas.
const DefaultServerID = 4207

// ParseSourceURL reads mysql://USER[:PASS]@HOST[:PORT]. The password may be
// left out of the URL and given separately (environment or file), so it never
// shows in a process listing.
func ParseSourceURL(raw string) (Config, error) {
	const forms = "use mysql://USER[:PASSWORD]@HOST[:PORT]"
	if raw == "" {
		return Config{}, fmt.Errorf("no source given: %s (flag --source or BINARC_SOURCE)", forms)
	}
	// The userinfo is cut off as text first: a password holding '/', '#'
	// or '?' would end url.Parse's authority early and leak into messages.
	user, pass, hostURL, _, hasUser := redact.SplitURL(raw)
	shown := redact.URL(raw)
	u, err := url.Parse(hostURL)
	if err != nil {
		return Config{}, fmt.Errorf("source URL %q: cannot parse it (%v); %s", shown, redactErr(err), forms)
	}
	if strings.Contains(u.Host, ",") {
		return Config{}, fmt.Errorf("source URL %q names several servers: only binarc stream follows several (the writable one); give one server here", Redact(raw))
	}
	if u.Scheme != "mysql" && u.Scheme != "mariadb" {
		return Config{}, fmt.Errorf("source URL %q: unsupported scheme %q; %s", shown, u.Scheme, forms)
	}
	if u.User != nil || u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.Fragment != "" {
		return Config{}, fmt.Errorf("source URL %q: unexpected text around the host; %s", shown, forms)
	}
	if !hasUser || user == "" {
		return Config{}, fmt.Errorf("source URL %q: no user; %s", shown, forms)
	}
	if user, err = url.PathUnescape(user); err != nil {
		return Config{}, fmt.Errorf("source URL %q: the user has a bad %%-escape; %s", shown, forms)
	}
	if pass, err = url.PathUnescape(pass); err != nil {
		return Config{}, fmt.Errorf("source URL %q: the password has a bad %%-escape (write %%25 for %%, or give the password in the environment); %s", shown, forms)
	}
	host, portStr := u.Hostname(), u.Port()
	if host == "" {
		return Config{}, fmt.Errorf("source URL %q: no host; %s", shown, forms)
	}
	port := 3306
	if portStr != "" {
		port, err = strconv.Atoi(portStr)
		if err != nil || port <= 0 || port > 65535 {
			return Config{}, fmt.Errorf("source URL %q: bad port %q; %s", shown, portStr, forms)
		}
	}
	return Config{
		Host:            host,
		Port:            uint16(port),
		User:            user,
		Password:        pass,
		ServerID:        DefaultServerID,
		HeartbeatPeriod: time.Second,
		ReadTimeout:     15 * time.Second,
	}, nil
}

// ParseSourceURLs reads a source URL that may name several servers, the
// way libpq does: mysql://USER[:PASS]@HOST1[:PORT1],HOST2[:PORT2]. Every
// server gets the same user and password.
func ParseSourceURLs(raw string) ([]Config, error) {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		c, err := ParseSourceURL(raw)
		return []Config{c}, err
	}
	user := ""
	if i := strings.LastIndex(rest, "@"); i >= 0 {
		user, rest = rest[:i+1], rest[i+1:]
	}
	hosts, tail := rest, ""
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		hosts, tail = rest[:i], rest[i:]
	}
	var out []Config
	seen := map[string]bool{}
	for _, h := range strings.Split(hosts, ",") {
		c, err := ParseSourceURL(scheme + "://" + user + h + tail)
		if err != nil {
			return nil, err
		}
		if seen[c.Addr()] {
			return nil, fmt.Errorf("source URL %q names %s twice", Redact(raw), c.Addr())
		}
		seen[c.Addr()] = true
		out = append(out, c)
	}
	return out, nil
}

// Addr is HOST:PORT.
func (c Config) Addr() string { return net.JoinHostPort(c.Host, strconv.Itoa(int(c.Port))) }

// String names the source for logs, without the password.
func (c Config) String() string { return fmt.Sprintf("mysql://%s@%s", c.User, c.Addr()) }

// Redact replaces the password in a source URL with "xxxxx" for messages,
// as text: it never parses the URL.
func Redact(raw string) string { return redact.URL(raw) }

// redactErr renders a url.Parse error without echoing the URL, which may
// carry a password.
func redactErr(err error) string {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err.Error()
	}
	return "malformed URL"
}
