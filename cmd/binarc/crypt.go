package main

import (
	"fmt"
	"os"

	"github.com/binarc/binarc/archive/crypt"
	"github.com/rs/zerolog"
)

// encryptFlags are the writers' (stream, snapshot): public keys only.
type encryptFlags struct {
	EncryptTo []string `name:"encrypt-to" env:"BINARC_ENCRYPT_TO" sep:"," placeholder:"RECIPIENT" help:"Encrypt everything stored to this age public key (age1…; repeatable, or comma-separated in BINARC_ENCRYPT_TO). Give an offline recovery key beside the daily one. Other recipients than a timeline's start a new timeline."`
}

// sealer is nil when no recipient was given.
func (f encryptFlags) sealer() (*crypt.Sealer, error) {
	if len(f.EncryptTo) == 0 {
		return nil, nil
	}
	s, err := crypt.NewSealer(f.EncryptTo)
	if err != nil {
		return nil, usageError{err}
	}
	return s, nil
}

// identityFlags are the readers' (restore, binlog fetch, binlog events,
// verify): the secret key.
type identityFlags struct {
	Identity string `env:"BINARC_IDENTITY_FILE" type:"path" placeholder:"FILE" help:"age identity file (age-keygen's output) to read an encrypted archive with."`
}

// opener is nil when no identity was given.
func (f identityFlags) opener(log zerolog.Logger) (*crypt.Opener, error) {
	return loadSecretFile(log, f.Identity, "identity", "the identity file", crypt.LoadIdentities)
}

// loadSecretFile loads the secret key file at path with load: nil when
// no path was given, a usage error when it cannot be loaded. It warns
// (logging path as field, naming the file what) when users other than the
// owner may read the file.
func loadSecretFile[T any](log zerolog.Logger, path, field, what string, load func(string) (*T, error)) (*T, error) {
	if path == "" {
		return nil, nil
	}
	if st, err := os.Stat(path); err == nil && st.Mode().Perm()&0o077 != 0 {
		log.Warn().Str(field, path).Str("mode", fmt.Sprintf("%04o", st.Mode().Perm())).Msg(what + " is readable by other users: chmod 600 it")
	}
	v, err := load(path)
	if err != nil {
		return nil, usageError{err}
	}
	return v, nil
}
