package objstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/binarc/binarc/internal/redact"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
)

// S3Config says where an S3 store lives. Credentials come from the SDK's
// standard chain (environment, shared config and credentials files, SSO,
// container and instance roles) unless Credentials is set.
type S3Config struct {
	// Bucket must exist; binarc never creates it.
	Bucket string
	// Prefix is prepended, joined with "/", to every key. Leading and
	// trailing slashes are ignored. Empty means the bucket root.
	Prefix string
	// Endpoint is the base URL of an S3-compatible server, such as
	// http://127.0.0.1:7070. Empty means AWS_ENDPOINT_URL_S3 or
	// AWS_ENDPOINT_URL if set (the SDK reads them), else AWS S3.
	Endpoint string
	// Region is the signing region. Empty means the SDK's default
	// (AWS_REGION, shared config), and us-east-1 when that is empty too,
	// which S3-compatible servers accept.
	Region string
	// PathStyle addresses the bucket in the URL path (http://host/bucket/key)
	// instead of the host name. It is forced on with a custom endpoint, from
	// Endpoint or the environment, and by AWS_S3_FORCE_PATH_STYLE=true or
	// BINARC_S3_PATH_STYLE=true.
	PathStyle bool
	// Credentials overrides the SDK's credential chain; nil keeps it.
	Credentials aws.CredentialsProvider
}

// S3 is a Store in an S3 bucket, on aws-sdk-go-v2. Transient failures
// (throttling, 5xx, connection resets) are retried by the SDK's retryer,
// configured once in NewS3; callers do not retry.
//
// ETags are S3's, quoted as S3 returns them; pass them back unchanged.
//
// A conditional Put whose first attempt reached S3 but whose response was
// lost is retried and then reports ErrExist or ErrPrecondition against its
// own write. Callers that must tell these apart re-read the object and
// compare it with what they wrote.
type S3 struct {
	client   *s3.Client
	bucket   string
	prefix   string // "" or ends with "/"
	endpoint string // for messages, without credentials
	write    S3WriteOptions
}

var _ Store = (*S3)(nil)

// s3MaxAttempts and s3MaxBackoff bound the SDK retryer: five attempts with
// jittered exponential backoff capped at 5s ride out a server restart or a
// burst of 503 SlowDown without stalling a caller for minutes.
const (
	s3MaxAttempts = 5
	s3MaxBackoff  = 5 * time.Second
)

// s3IdleConnsPerHost is how many connections to the store are kept open
// between requests. The SDK keeps 10; binarc may have up to 64 uploads
// in flight (--upload-concurrency, --semi-sync-inflight), and a burst
// wider than the pool closed the extra connections after it and dialled
// them again for the next (a TCP and a TLS handshake each, on the path of
// a semi-sync commit).
const s3IdleConnsPerHost = 80

// NewS3 returns a store for cfg. It makes no request; call CheckBucket to
// fail early on a missing bucket or bad credentials.
func NewS3(ctx context.Context, cfg S3Config) (*S3, error) {
	if cfg.Bucket == "" {
		return nil, errors.New("s3: no bucket given")
	}
	opts := []func(*config.LoadOptions) error{
		config.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = s3MaxAttempts
				o.MaxBackoff = s3MaxBackoff
				// The client-side retry quota would start failing requests
				// after a long outage; a daemon wants every request retried.
				o.RateLimiter = ratelimit.None
			})
		}),
		// Since service/s3 v1.73.0 (January 2025, aws-sdk-go-v2 discussion
		// #2960) the SDK adds CRC32 checksums, sent as aws-chunked trailers,
		// to every upload and validates them on download. MinIO, Ceph and
		// other S3-compatible servers have rejected that (for example with
		// XAmzContentSHA256Mismatch); versitygw accepts either. Ask for
		// checksums only where S3 requires them.
		config.WithRequestChecksumCalculation(aws.RequestChecksumCalculationWhenRequired),
		config.WithResponseChecksumValidation(aws.ResponseChecksumValidationWhenRequired),
		config.WithHTTPClient(awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
			t.MaxIdleConns = max(t.MaxIdleConns, s3IdleConnsPerHost)
			t.MaxIdleConnsPerHost = s3IdleConnsPerHost
		})),
	}
	if cfg.Region != "" {
		opts = append(opts, config.WithRegion(cfg.Region))
	}
	if cfg.Credentials != nil {
		opts = append(opts, config.WithCredentialsProvider(cfg.Credentials))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("s3: load AWS configuration: %w", err)
	}
	if awsCfg.Region == "" {
		awsCfg.Region = "us-east-1"
	}

	endpoint := cfg.Endpoint
	if endpoint == "" {
		endpoint = firstEnv("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
	}
	pathStyle := cfg.PathStyle || endpoint != "" ||
		envTrue("AWS_S3_FORCE_PATH_STYLE") || envTrue("BINARC_S3_PATH_STYLE")

	client := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		o.UsePathStyle = pathStyle
	})

	prefix := strings.Trim(cfg.Prefix, "/")
	if prefix != "" {
		prefix += "/"
	}
	where := "AWS S3 region " + awsCfg.Region
	if endpoint != "" {
		where = redactURL(endpoint)
	}
	return &S3{client: client, bucket: cfg.Bucket, prefix: prefix, endpoint: where}, nil
}

// String names the store as an s3:// URL plus the endpoint.
func (s *S3) String() string {
	u := "s3://" + s.bucket
	if s.prefix != "" {
		u += "/" + strings.TrimSuffix(s.prefix, "/")
	}
	return u + " at " + s.endpoint
}

// CheckBucket checks the bucket exists and the credentials may use it, with
// an error that says what to do when not. A missing bucket matches
// ErrNotExist.
func (s *S3) CheckBucket(ctx context.Context) error {
	_, err := s.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(s.bucket)})
	if err == nil {
		return nil
	}
	code, status := apiError(err)
	switch {
	case status == 404 || code == "NoSuchBucket" || code == "NotFound":
		return fmt.Errorf("s3: bucket %q does not exist at %s: create it first (aws s3 mb s3://%s) or fix --store: %w",
			s.bucket, s.endpoint, s.bucket, ErrNotExist)
	case status == 403 || status == 401 || code == "Forbidden" || code == "AccessDenied":
		return fmt.Errorf("s3: access to bucket %q at %s denied: check the credentials "+
			"(AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or the instance role) "+
			"and that they are allowed s3:ListBucket, s3:GetObject, s3:PutObject and s3:DeleteObject on it: %w",
			s.bucket, s.endpoint, err)
	}
	return fmt.Errorf("s3: check bucket %q at %s: %w", s.bucket, s.endpoint, err)
}

// Put uploads data with a single PutObject. IfAbsent sends If-None-Match: *
// and IfMatch sends If-Match, which S3 evaluates atomically.
func (s *S3) Put(ctx context.Context, key string, data []byte, opts PutOptions) (ObjectInfo, error) {
	return s.put(ctx, key, bytes.NewReader(data), int64(len(data)), opts)
}

// PutBuffers is Put of the concatenation of bufs, sent from them as they
// are (see objstore.PutBuffers).
func (s *S3) PutBuffers(ctx context.Context, key string, bufs [][]byte, opts PutOptions) (ObjectInfo, error) {
	r := NewBuffersReader(bufs)
	return s.put(ctx, key, r, r.Size(), opts)
}

// put is Put of the size bytes of body, which the SDK rewinds to retry.
func (s *S3) put(ctx context.Context, key string, body io.ReadSeeker, size int64, opts PutOptions) (ObjectInfo, error) {
	if opts.IfAbsent && opts.IfMatch != "" {
		return ObjectInfo{}, fmt.Errorf("s3: put %s: IfAbsent and IfMatch are mutually exclusive", key)
	}
	in := &s3.PutObjectInput{
		Bucket:        aws.String(s.bucket),
		Key:           aws.String(s.prefix + key),
		Body:          body,
		ContentLength: aws.Int64(size),
	}
	if opts.IfAbsent {
		in.IfNoneMatch = aws.String("*")
	}
	if opts.IfMatch != "" {
		in.IfMatch = aws.String(opts.IfMatch)
	}
	s.applyPut(in, key)
	out, err := s.client.PutObject(ctx, in)
	if err != nil {
		code, status := apiError(err)
		// 412 PreconditionFailed is the answer to a failed condition. 409
		// counts only as ConditionalRequestConflict (a concurrent
		// conditional write to the key is in flight and will win, not us):
		// versitygw's posix backend also answers 409, ObjectParentIsFile or
		// ExistingObjectIsDirectory, when a key collides with a prefix.
		failed := status == 412 || code == "PreconditionFailed" || code == "ConditionalRequestConflict"
		switch {
		case opts.IfAbsent && failed:
			return ObjectInfo{}, fmt.Errorf("s3: put %s: %w", key, ErrExist)
		case opts.IfMatch != "" && (failed || code == "NoSuchKey"):
			// S3 (and versitygw) answer If-Match on a missing key with 404
			// NoSuchKey rather than 412.
			return ObjectInfo{}, fmt.Errorf("s3: put %s if-match %s: %w", key, opts.IfMatch, ErrPrecondition)
		}
		return ObjectInfo{}, fmt.Errorf("s3: put %s: %w", key, s.wrapBucketError(err))
	}
	return ObjectInfo{Key: key, Size: size, ETag: aws.ToString(out.ETag), ModTime: time.Now()}, nil
}

// Get opens the object with GetObject. The caller closes the body.
func (s *S3) Get(ctx context.Context, key string) (io.ReadCloser, ObjectInfo, error) {
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{
		Bucket: aws.String(s.bucket),
		Key:    aws.String(s.prefix + key),
	})
	if err != nil {
		if code, status := apiError(err); code == "NoSuchKey" || (status == 404 && code != "NoSuchBucket") {
			return nil, ObjectInfo{}, fmt.Errorf("s3: get %s: %w", key, ErrNotExist)
		}
		return nil, ObjectInfo{}, fmt.Errorf("s3: get %s: %w", key, s.wrapBucketError(err))
	}
	return out.Body, ObjectInfo{
		Key:     key,
		Size:    aws.ToInt64(out.ContentLength),
		ETag:    aws.ToString(out.ETag),
		ModTime: aws.ToTime(out.LastModified),
	}, nil
}

// List pages through ListObjectsV2 with delimiter "/", returning objects and
// common prefixes merged in key order.
func (s *S3) List(ctx context.Context, prefix string) ([]Entry, error) {
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		return nil, fmt.Errorf("s3: list %s: prefix must be empty or end with \"/\"", prefix)
	}
	full := s.prefix + prefix
	pages := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{
		Bucket:    aws.String(s.bucket),
		Prefix:    aws.String(full),
		Delimiter: aws.String("/"),
	})
	var entries []Entry
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("s3: list %s: %w", prefix, s.wrapBucketError(err))
		}
		for _, obj := range page.Contents {
			key := aws.ToString(obj.Key)
			// A "folder marker" object named like the prefix itself (made by
			// consoles and some tools) is not below the prefix.
			if key == full || !strings.HasPrefix(key, s.prefix) {
				continue
			}
			entries = append(entries, Entry{Key: key[len(s.prefix):], Size: aws.ToInt64(obj.Size)})
		}
		for _, cp := range page.CommonPrefixes {
			key := aws.ToString(cp.Prefix)
			if !strings.HasPrefix(key, s.prefix) {
				continue
			}
			entries = append(entries, Entry{Key: key[len(s.prefix):], Dir: true})
		}
	}
	// S3 sorts Contents and CommonPrefixes separately.
	sort.Slice(entries, func(i, j int) bool { return entries[i].Key < entries[j].Key })
	return entries, nil
}

// Delete removes the object. It first reads the object's head: an object
// under Object Lock (a retention in the future, or a legal hold) is
// refused with a LockedError and no delete is sent, because on a
// versioned bucket (every Object Lock bucket is) a DeleteObject without a
// version id succeeds by hiding the locked data under a delete marker,
// which is not what prune means and which the operator must then undo.
// An unlocked object is deleted by its version id when it has one, so
// that the data goes and no marker is left. A missing key is no error.
func (s *S3) Delete(ctx context.Context, key string) error {
	head, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(s.prefix + key)})
	if err != nil {
		if code, status := apiError(err); code == "NotFound" || code == "NoSuchKey" || status == 404 {
			return nil
		}
		return fmt.Errorf("s3: delete %s: read its head first: %w", key, s.wrapBucketError(err))
	}
	if lerr := lockOf(key, head); lerr != nil {
		return fmt.Errorf("s3: delete: %w", lerr)
	}
	in := &s3.DeleteObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(s.prefix + key)}
	if v := aws.ToString(head.VersionId); v != "" && v != "null" {
		in.VersionId = aws.String(v)
	}
	if _, err := s.client.DeleteObject(ctx, in); err != nil {
		if code, _ := apiError(err); code == "NoSuchKey" {
			return nil
		}
		if lerr := s.lockedError(ctx, key); lerr != nil {
			return fmt.Errorf("s3: delete: %w", lerr)
		}
		return fmt.Errorf("s3: delete %s: %w", key, s.wrapBucketError(err))
	}
	return nil
}

// wrapBucketError adds where the bucket is to errors that are about it rather
// than the object, so the operator knows which setting to fix.
func (s *S3) wrapBucketError(err error) error {
	if code, _ := apiError(err); code == "NoSuchBucket" {
		return fmt.Errorf("bucket %q does not exist at %s: %w", s.bucket, s.endpoint, errors.Join(ErrNotExist, err))
	}
	return err
}

// apiError extracts the S3 error code and HTTP status from an SDK error;
// either is zero when absent (HEAD responses carry no error code).
func apiError(err error) (code string, status int) {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		code = ae.ErrorCode()
	}
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) {
		status = re.HTTPStatusCode()
	}
	return code, status
}

func firstEnv(names ...string) string {
	for _, name := range names {
		if v := os.Getenv(name); v != "" {
			return v
		}
	}
	return ""
}

func envTrue(name string) bool {
	v, err := strconv.ParseBool(os.Getenv(name))
	return err == nil && v
}

// redactURL drops any user:password from an endpoint URL before it goes into
// a message.
func redactURL(raw string) string {
	return redact.URL(raw)
}
