package objstore

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sort"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// Multipart upload tuning. 16 MiB parts reach S3's 10,000-part limit at
// 156 GiB; past that the part size doubles, so any backup S3 can hold (5 TiB)
// fits. Memory is bounded by s3StreamBuffers parts: one being filled from
// the reader while the others upload.
const (
	s3PartSize      = 16 << 20
	s3MinPartSize   = 5 << 20 // S3's minimum for every part but the last
	s3MaxParts      = 10000
	s3StreamBuffers = 3
	// s3AbortTimeout bounds the clean-up of a failed upload. It outlasts the
	// SDK retryer's own attempts, so an abort that meets a store outage of
	// up to about a minute still gets through.
	s3AbortTimeout = 90 * time.Second
)

// PutStream uploads r as a multipart upload, in parts of 16 MiB, at most two
// uploading while a third fills. A stream that fits in one part is sent with
// a single PutObject. On any failure, the reader's, S3's or ctx's, the
// upload is aborted with a fresh context, so no parts are left behind.
// IfAbsent is checked before the first part (HeadObject) and enforced by
// If-None-Match: * on CompleteMultipartUpload.
func (s *S3) PutStream(ctx context.Context, key string, r io.Reader, opts PutOptions) (ObjectInfo, error) {
	if opts.IfMatch != "" {
		return ObjectInfo{}, fmt.Errorf("s3: put stream %s: IfMatch is not supported for streams", key)
	}
	if opts.IfAbsent {
		_, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(s.prefix + key)})
		if err == nil {
			return ObjectInfo{}, fmt.Errorf("s3: put stream %s: %w", key, ErrExist)
		}
		if code, status := apiError(err); status != 404 && code != "NotFound" && code != "NoSuchKey" {
			return ObjectInfo{}, fmt.Errorf("s3: put stream %s: check the key is free: %w", key, s.wrapBucketError(err))
		}
	}
	firstSize := s3PartSize
	if opts.PartSize > 0 {
		firstSize = max(opts.PartSize, s3MinPartSize)
	}
	first := make([]byte, firstSize)
	src := &endReader{r: readerWithContext(ctx, r)}
	n, err := io.ReadFull(src, first)
	switch {
	case err != nil && src.ended:
		// All of it fits in one part: no multipart upload needed.
		info, err := s.Put(ctx, key, first[:n], opts)
		if err != nil {
			return ObjectInfo{}, fmt.Errorf("s3: put stream %s: %w", key, err)
		}
		return info, nil
	case err != nil:
		return ObjectInfo{}, fmt.Errorf("s3: put stream %s: read: %w", key, err)
	}
	return s.multipart(ctx, key, first, r, opts)
}

// upload is one multipart upload in progress.
type upload struct {
	s   *S3
	key string
	id  string

	mu    sync.Mutex
	parts []types.CompletedPart
	err   error // the first part upload failure
}

func (s *S3) multipart(ctx context.Context, key string, first []byte, r io.Reader, opts PutOptions) (info ObjectInfo, err error) {
	cin := &s3.CreateMultipartUploadInput{
		Bucket: aws.String(s.bucket),
		Key:    aws.String(s.prefix + key),
	}
	s.applyMultipart(cin)
	out, err := s.client.CreateMultipartUpload(ctx, cin)
	if err != nil {
		return ObjectInfo{}, fmt.Errorf("s3: put stream %s: start multipart upload: %w", key, s.wrapBucketError(err))
	}
	u := &upload{s: s, key: key, id: aws.ToString(out.UploadId)}
	defer func() {
		if err != nil {
			if aerr := u.abort(); aerr != nil {
				err = fmt.Errorf("%w; and %v", err, aerr)
			}
		}
	}()

	// A part failing cancels the reads and the other parts. Buffers go back
	// to the pool when their part is stored, so at most s3StreamBuffers parts
	// are in memory: the ones uploading and the one being filled.
	pctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	buffers := make(chan []byte, s3StreamBuffers)
	for range s3StreamBuffers - 1 {
		buffers <- make([]byte, len(first))
	}
	var wg sync.WaitGroup
	var size int64
	partSize := len(first)
	buf, n, last := first, len(first), false
	for part := int32(1); ; part++ {
		if part > s3MaxParts {
			err = fmt.Errorf("more than %d parts", s3MaxParts)
			break
		}
		size += int64(n)
		data := buf[:n]
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := u.uploadPart(pctx, part, data)
			buffers <- data[:cap(data)]
			if err != nil {
				cancel(err)
			}
		}()
		if last {
			break
		}
		if part%1000 == 0 {
			// Grow the parts so a long stream does not run out of part
			// numbers: 16 MiB parts for the first 1000, 32 MiB after, ...
			partSize *= 2
		}
		select {
		case buf = <-buffers:
		case <-pctx.Done():
		}
		if pctx.Err() != nil {
			break
		}
		if cap(buf) < partSize {
			buf = make([]byte, partSize)
		}
		src := &endReader{r: readerWithContext(pctx, r)}
		n, err = io.ReadFull(src, buf[:partSize])
		if err != nil && src.ended && n == 0 {
			err = nil // the previous part was the last
			break
		}
		if err != nil && src.ended {
			err, last = nil, true
		}
		if err != nil {
			err = fmt.Errorf("read: %w", err)
			break
		}
	}
	if err != nil {
		cancel(err) // stop the parts still uploading: the upload is lost
	}
	wg.Wait()
	switch {
	case ctx.Err() != nil:
		err = ctx.Err()
	case u.failure() != nil:
		// A part failed; the reads it cancelled are not the story.
		err = u.failure()
	case err == nil && pctx.Err() != nil:
		err = context.Cause(pctx)
	}
	if err != nil {
		return ObjectInfo{}, fmt.Errorf("s3: put stream %s: %w", key, err)
	}
	return u.complete(ctx, size, opts)
}

func (u *upload) uploadPart(ctx context.Context, part int32, data []byte) error {
	out, err := u.s.client.UploadPart(ctx, &s3.UploadPartInput{
		Bucket:        aws.String(u.s.bucket),
		Key:           aws.String(u.s.prefix + u.key),
		UploadId:      aws.String(u.id),
		PartNumber:    aws.Int32(part),
		Body:          bytes.NewReader(data),
		ContentLength: aws.Int64(int64(len(data))),
	})
	u.mu.Lock()
	defer u.mu.Unlock()
	if err != nil {
		if u.err == nil && ctx.Err() == nil {
			u.err = fmt.Errorf("upload part %d: %w", part, u.s.wrapBucketError(err))
		}
		return err
	}
	u.parts = append(u.parts, types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(part)})
	return nil
}

func (u *upload) failure() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.err
}

func (u *upload) complete(ctx context.Context, size int64, opts PutOptions) (ObjectInfo, error) {
	sort.Slice(u.parts, func(i, j int) bool { return *u.parts[i].PartNumber < *u.parts[j].PartNumber })
	in := &s3.CompleteMultipartUploadInput{
		Bucket:          aws.String(u.s.bucket),
		Key:             aws.String(u.s.prefix + u.key),
		UploadId:        aws.String(u.id),
		MultipartUpload: &types.CompletedMultipartUpload{Parts: u.parts},
	}
	if opts.IfAbsent {
		in.IfNoneMatch = aws.String("*")
	}
	out, err := u.s.client.CompleteMultipartUpload(ctx, in)
	if err != nil {
		code, status := apiError(err)
		if opts.IfAbsent && (status == 412 || code == "PreconditionFailed" || code == "ConditionalRequestConflict") {
			return ObjectInfo{}, fmt.Errorf("s3: put stream %s: complete multipart upload: %w", u.key, ErrExist)
		}
		return ObjectInfo{}, fmt.Errorf("s3: put stream %s: complete multipart upload: %w", u.key, u.s.wrapBucketError(err))
	}
	if err := u.s.retainCompleted(ctx, u.key); err != nil {
		return ObjectInfo{}, fmt.Errorf("s3: put stream %s: %w", u.key, err)
	}
	return ObjectInfo{Key: u.key, Size: size, ETag: aws.ToString(out.ETag), ModTime: time.Now()}, nil
}

// abort drops the upload's parts. It runs on a fresh context: the caller's
// may be what was cancelled.
func (u *upload) abort() error {
	ctx, cancel := context.WithTimeout(context.Background(), s3AbortTimeout)
	defer cancel()
	var err error
	for {
		_, err = u.s.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{
			Bucket:   aws.String(u.s.bucket),
			Key:      aws.String(u.s.prefix + u.key),
			UploadId: aws.String(u.id),
		})
		if code, _ := apiError(err); err == nil || code == "NoSuchUpload" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("abort multipart upload %s of %s failed, so its parts stay in the bucket until "+
				"binarc sweeps them at its next start (or a lifecycle rule AbortIncompleteMultipartUpload does): %w",
				u.id, u.key, err)
		case <-time.After(2 * time.Second):
		}
	}
}

// SweepUploads aborts every multipart upload under prefix.
func (s *S3) SweepUploads(ctx context.Context, prefix string) (int, error) {
	pages := s3.NewListMultipartUploadsPaginator(s.client, &s3.ListMultipartUploadsInput{
		Bucket: aws.String(s.bucket),
		Prefix: aws.String(s.prefix + prefix),
	})
	n := 0
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return n, fmt.Errorf("s3: list multipart uploads under %s: %w", prefix, s.wrapBucketError(err))
		}
		for _, mu := range page.Uploads {
			_, err := s.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{
				Bucket: aws.String(s.bucket), Key: mu.Key, UploadId: mu.UploadId,
			})
			if code, _ := apiError(err); err != nil && code != "NoSuchUpload" {
				return n, fmt.Errorf("s3: abort multipart upload %s of %s: %w", aws.ToString(mu.UploadId), aws.ToString(mu.Key), err)
			}
			n++
		}
	}
	return n, nil
}

// endReader remembers whether its source ended: returned io.EOF itself,
// as the io.Reader contract has it. io.ReadFull reports a source that
// ended early as io.ErrUnexpectedEOF, and a read that failed with an
// error wrapping io.ErrUnexpectedEOF (a segment's body cut off mid-way)
// looked the same to errors.Is: compaction then stored the segments read
// so far as the whole file (docs/RELIABILITY.md, finding 16).
type endReader struct {
	r     io.Reader
	ended bool
}

func (e *endReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err == io.EOF { //nolint:errorlint // the contract: EOF itself, never wrapped
		e.ended = true
	}
	return n, err
}
