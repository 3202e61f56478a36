package replication

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/rs/zerolog"
)

// Sources is what a command line says about the servers binarc reads from:
// the URL (--source), where else the password may come from, the server id
// and the TLS settings. Parse and ParseOne turn it into one Config per
// server. Every server of a multi-host URL gets the same user, password,
// server id and TLS settings (mode, CA, certificate, key): a setting given
// once on the command line holds for every host, never only the first.
type Sources struct {
	// URL is mysql://USER[:PASSWORD]@HOST[:PORT], or for Parse several
	// servers, mysql://USER@HOST1[:PORT1],HOST2[:PORT2].
	URL string
	// Password says where the password comes from besides the URL.
	Password PasswordFrom
	// ServerID is the server_id binarc registers with; 0 is refused.
	ServerID uint32
	// TLS applies to every server. Its Flag names the flags in messages
	// ("--source-tls" when empty).
	TLS TLSOptions
	// Log receives the warning about a password in the URL, and each
	// Config's own warnings (a preferred-TLS server answering without TLS).
	Log zerolog.Logger
}

// PasswordFrom says where a server's password may come from besides its
// URL. The order of preference, most preferred first: the file, the
// environment variable, the URL. A password given on purpose in a file or
// the environment wins over one left in the URL (which shows in ps).
type PasswordFrom struct {
	// File holds the password on its first line ("" for none).
	File string
	// FileFlag names the file's flag in errors ("--source-password-file").
	FileFlag string
	// Env is the environment variable's value, when EnvSet.
	Env    string
	EnvSet bool
}

// Pick returns the password by the order of preference, given what the URL
// carried. Neither the file's content nor the password is ever in an error.
func (p PasswordFrom) Pick(fromURL string) (string, error) {
	if p.File != "" {
		b, err := os.ReadFile(p.File)
		if err != nil {
			return "", fmt.Errorf("%s: %w", p.FileFlag, err)
		}
		return strings.TrimRight(strings.SplitN(string(b), "\n", 2)[0], "\r"), nil
	}
	if p.EnvSet {
		return p.Env, nil
	}
	return fromURL, nil
}

// Parse reads a source that may name several servers (binarc stream
// follows the writable one). Every error is a usage error naming the flag.
func (s Sources) Parse() ([]Config, error) {
	cfgs, err := ParseSourceURLs(s.URL)
	if err != nil {
		return nil, fmt.Errorf("--source: %w", err)
	}
	return s.apply(cfgs)
}

// ParseOne reads a source that must name one server, for the commands that
// read from one (snapshot); several are refused with a message saying so.
func (s Sources) ParseOne() (Config, error) {
	c, err := ParseSourceURL(s.URL)
	if err != nil {
		return Config{}, fmt.Errorf("--source: %w", err)
	}
	cfgs, err := s.apply([]Config{c})
	if err != nil {
		return Config{}, err
	}
	return cfgs[0], nil
}

// apply gives every server the password, server id, TLS settings and
// logger; the URL gives all the same user and password.
func (s Sources) apply(cfgs []Config) ([]Config, error) {
	fromURL := cfgs[0].Password
	if fromURL != "" {
		s.Log.Warn().Msg("the source URL carries a password, which shows in ps and shell history: prefer BINARC_SOURCE_PASSWORD or --source-password-file")
	}
	pass, err := s.Password.Pick(fromURL)
	if err != nil {
		return nil, err
	}
	if s.ServerID == 0 {
		return nil, errors.New("--server-id 0: a replica needs a non-zero server id")
	}
	tls := s.TLS
	if tls.Flag == "" {
		tls.Flag = "--source-tls"
	}
	if err := tls.Validate(); err != nil {
		return nil, err
	}
	for i := range cfgs {
		cfgs[i].Password, cfgs[i].ServerID, cfgs[i].TLS, cfgs[i].Log = pass, s.ServerID, tls, s.Log
	}
	return cfgs, nil
}
