package main

import (
	"context"
	"fmt"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/archive/objstore"
)

// storeWriteFlags are what the writers (stream, snapshot) add to every
// object they store in S3.
type storeWriteFlags struct {
	ObjectLockDays int    `env:"BINARC_OBJECT_LOCK_DAYS" placeholder:"N" help:"S3 Object Lock: keep every archive object (all but the leases) undeletable for N days after it is written. The bucket must have been created with Object Lock enabled. Implies --no-compact on stream (segments cannot be deleted)."`
	ObjectLockMode string `env:"BINARC_OBJECT_LOCK_MODE" default:"governance" enum:"governance,compliance" help:"governance (a user with s3:BypassGovernanceRetention may still delete) or compliance (nobody can until the date)."`
	SSE            string `name:"sse" env:"BINARC_SSE" placeholder:"ALG" help:"S3 server-side encryption of every object: aws:kms or AES256 (on top of --encrypt-to, not instead)."`
	SSEKMSKeyID    string `name:"sse-kms-key-id" env:"BINARC_SSE_KMS_KEY_ID" placeholder:"KEY" help:"KMS key for --sse aws:kms (default: the account's S3 key)."`
}

// apply sets the options on store, which must be S3 when any is given.
func (f storeWriteFlags) apply(ctx context.Context, store objstore.Store, layout archive.Layout) error {
	if f.ObjectLockDays == 0 && f.SSE == "" && f.SSEKMSKeyID == "" {
		return nil
	}
	s3, ok := store.(*objstore.S3)
	if !ok {
		return usageError{fmt.Errorf("--object-lock-days and --sse need an s3:// store, not %s", store)}
	}
	err := s3.SetWriteOptions(ctx, objstore.S3WriteOptions{
		LockMode: f.ObjectLockMode, LockDays: f.ObjectLockDays,
		Lock: func(key string) bool { return !layout.Rewritten(key) },
		SSE:  f.SSE, SSEKMSKeyID: f.SSEKMSKeyID,
	})
	if err != nil {
		return usageError{err}
	}
	return nil
}
