package main

import (
	"fmt"

	"github.com/binarc/binarc/archive/crypt"
	"github.com/binarc/binarc/archive/sign"
	"github.com/rs/zerolog"
)

// signFlags are the writers' (stream, snapshot): the signing key.
type signFlags struct {
	SignKey string `name:"sign-key" env:"BINARC_SIGN_KEY_FILE" type:"path" placeholder:"FILE" help:"Sign every object stored with this ed25519 key (PKCS#8 PEM, from binarc keygen --sign-key FILE or openssl genpkey -algorithm ed25519); readers given its public key with --trust-key refuse anything else."`
}

// writingKeys are the sealer and signer of a command that writes to the
// archive (stream, snapshot): nil for each one not asked for.
func writingKeys(e encryptFlags, s signFlags, log zerolog.Logger) (*crypt.Sealer, *sign.Signer, error) {
	sealer, err := e.sealer()
	if err != nil {
		return nil, nil, err
	}
	signer, err := s.signer(log)
	return sealer, signer, err
}

// signer is nil when no key was given. It warns of a key file others can
// read, as identityFlags does: whoever reads it can sign.
func (f signFlags) signer(log zerolog.Logger) (*sign.Signer, error) {
	s, err := loadSecretFile(log, f.SignKey, "sign_key", "the signing key file", sign.LoadSigner)
	if err != nil || s == nil { // an error, or no key given
		return nil, err
	}
	log.Info().Str("sign_key_id", s.KeyID().String()).Str("public_key", s.PublicKey()).Msg("signing every object stored (--sign-key): give readers the public key with --trust-key")
	return s, nil
}

// trustFlags are the readers' (restore, serve, binlog fetch, binlog
// events, verify, ls): the public keys signatures are accepted from. They
// come from the operator, never from the bucket.
type trustFlags struct {
	TrustKey []string `name:"trust-key" env:"BINARC_TRUST_KEY" sep:"," placeholder:"PUBKEY" help:"Accept only objects signed by this key (binarc-ed25519:…, as binarc keygen printed; repeatable, or comma-separated in BINARC_TRUST_KEY): anything unsigned or signed by another key is refused. Trust the old and the new key while rotating."`
}

// trust is nil when no key was given.
func (f trustFlags) trust() (*sign.Trust, error) {
	t, err := sign.ParseTrust(f.TrustKey)
	if err != nil {
		return nil, usageError{fmt.Errorf("--trust-key: %w", err)}
	}
	return t, nil
}

// keygenCmd creates keys.
type keygenCmd struct {
	SignKey string `name:"sign-key" required:"" type:"path" placeholder:"FILE" help:"Write a new ed25519 signing key to FILE (mode 0600; an existing file is never overwritten) and print its public key, for --trust-key."`
}

func (c keygenCmd) Run() error {
	s, err := sign.GenerateSigner(c.SignKey)
	if err != nil {
		return usageError{err}
	}
	fmt.Printf("# signing key written to %s (key id %s); give readers its public key:\n%s\n", c.SignKey, s.KeyID(), s.PublicKey())
	return nil
}
