package objstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// S3WriteOptions are what an S3 store adds to every object it writes:
// S3 Object Lock retention, so that a stolen credential cannot erase the
// history, and server-side encryption.
type S3WriteOptions struct {
	// LockMode is "governance" or "compliance"; LockDays the retention
	// from the moment of the write. Zero days: no lock.
	LockMode string
	LockDays int
	// Lock chooses the keys that get the retention; nil means all. Objects
	// that must be rewritten (leases) cannot carry one.
	Lock func(key string) bool
	// SSE is "aws:kms" or "AES256" (empty: the bucket's default), with
	// SSEKMSKeyID the KMS key for aws:kms (empty: the account's default).
	SSE         string
	SSEKMSKeyID string
}

// ErrLocked is matched by the error of a Delete refused by Object Lock.
var ErrLocked = errors.New("object is under S3 Object Lock")

// LockedError says until when an object is locked.
type LockedError struct {
	Key       string
	Mode      string
	Until     time.Time
	LegalHold bool
}

func (e *LockedError) Error() string {
	if e.LegalHold {
		return fmt.Sprintf("%s is under an Object Lock legal hold", e.Key)
	}
	return fmt.Sprintf("%s is under Object Lock (%s) until %s", e.Key, strings.ToLower(e.Mode), e.Until.UTC().Format(time.RFC3339))
}

func (e *LockedError) Unwrap() error { return ErrLocked }

// SetWriteOptions sets what every later write carries, after checking
// them. With a lock, the bucket must have Object Lock enabled (it can
// only be enabled when the bucket is created).
func (s *S3) SetWriteOptions(ctx context.Context, o S3WriteOptions) error {
	switch o.SSE {
	case "", string(types.ServerSideEncryptionAwsKms), string(types.ServerSideEncryptionAes256):
	default:
		return fmt.Errorf("--sse %q: use aws:kms or AES256", o.SSE)
	}
	if o.SSEKMSKeyID != "" && o.SSE != string(types.ServerSideEncryptionAwsKms) {
		return errors.New("--sse-kms-key-id goes with --sse aws:kms")
	}
	if o.LockDays < 0 {
		return fmt.Errorf("--object-lock-days %d: must be 0 (no lock) or more", o.LockDays)
	}
	if o.LockDays > 0 {
		switch o.LockMode {
		case "governance", "compliance":
		default:
			return fmt.Errorf("--object-lock-mode %q: use governance (users with s3:BypassGovernanceRetention may still delete) or compliance (nobody can, until it expires)", o.LockMode)
		}
		out, err := s.client.GetObjectLockConfiguration(ctx, &s3.GetObjectLockConfigurationInput{Bucket: aws.String(s.bucket)})
		if err != nil || out.ObjectLockConfiguration == nil || out.ObjectLockConfiguration.ObjectLockEnabled != types.ObjectLockEnabledEnabled {
			why := "it is not enabled"
			if err != nil {
				why = s.wrapBucketError(err).Error()
			}
			return fmt.Errorf("--object-lock-days: bucket %q has no Object Lock (%s): it can only be enabled when the bucket is created (aws s3api create-bucket --object-lock-enabled-for-bucket)", s.bucket, why)
		}
	}
	s.write = o
	return nil
}

// locks tells whether an object written at key gets the retention, and
// until when.
func (s *S3) locks(key string) (types.ObjectLockMode, *time.Time, bool) {
	o := s.write
	if o.LockDays <= 0 || (o.Lock != nil && !o.Lock(key)) {
		return "", nil, false
	}
	until := time.Now().Add(time.Duration(o.LockDays) * 24 * time.Hour).UTC()
	return types.ObjectLockMode(strings.ToUpper(o.LockMode)), &until, true
}

func (s *S3) applyPut(in *s3.PutObjectInput, key string) {
	if mode, until, ok := s.locks(key); ok {
		in.ObjectLockMode, in.ObjectLockRetainUntilDate = mode, until
		// S3 wants an integrity checksum on a put with retention.
		in.ChecksumAlgorithm = types.ChecksumAlgorithmCrc32
	}
	if s.write.SSE != "" {
		in.ServerSideEncryption = types.ServerSideEncryption(s.write.SSE)
		if s.write.SSEKMSKeyID != "" {
			in.SSEKMSKeyId = aws.String(s.write.SSEKMSKeyID)
		}
	}
}

// applyMultipart adds the server-side encryption to a multipart upload.
// Its retention is set once it is complete (retainCompleted): S3 wants a
// checksum on every part of an upload that carries one, which the upload
// does not compute.
func (s *S3) applyMultipart(in *s3.CreateMultipartUploadInput) {
	if s.write.SSE != "" {
		in.ServerSideEncryption = types.ServerSideEncryption(s.write.SSE)
		if s.write.SSEKMSKeyID != "" {
			in.SSEKMSKeyId = aws.String(s.write.SSEKMSKeyID)
		}
	}
}

// retainCompleted puts the retention on an object stored by a multipart
// upload.
func (s *S3) retainCompleted(ctx context.Context, key string) error {
	mode, until, ok := s.locks(key)
	if !ok {
		return nil
	}
	_, err := s.client.PutObjectRetention(ctx, &s3.PutObjectRetentionInput{
		Bucket:    aws.String(s.bucket),
		Key:       aws.String(s.prefix + key),
		Retention: &types.ObjectLockRetention{Mode: types.ObjectLockRetentionMode(mode), RetainUntilDate: until},
	})
	if err != nil {
		return fmt.Errorf("set Object Lock retention: %w", s.wrapBucketError(err))
	}
	return nil
}

// lockedError looks at why a delete of key failed: a *LockedError when
// the object is under retention or a legal hold, nil otherwise.
func (s *S3) lockedError(ctx context.Context, key string) error {
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(s.prefix + key)})
	if err != nil {
		return nil
	}
	if lerr := lockOf(key, out); lerr != nil {
		return lerr
	}
	return nil
}

// lockOf is the LockedError of an object whose head is out, or nil when
// nothing holds it.
func lockOf(key string, out *s3.HeadObjectOutput) error {
	if out.ObjectLockLegalHoldStatus == types.ObjectLockLegalHoldStatusOn {
		return &LockedError{Key: key, LegalHold: true}
	}
	if out.ObjectLockRetainUntilDate != nil && out.ObjectLockRetainUntilDate.After(time.Now()) {
		return &LockedError{Key: key, Mode: string(out.ObjectLockMode), Until: *out.ObjectLockRetainUntilDate}
	}
	return nil
}
