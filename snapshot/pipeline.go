package snapshot

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"syscall"

	"github.com/binarc/binarc/archive/crypt"
	"github.com/binarc/binarc/archive/objstore"
	"github.com/klauspost/compress/zstd"
)

// streamPutter is the one store method the pipeline needs.
type streamPutter interface {
	PutStream(ctx context.Context, key string, r io.Reader, opts objstore.PutOptions) (objstore.ObjectInfo, error)
}

// streamed is what the pipeline stored.
type streamed struct {
	RawSize    int64
	StoredSize int64
	SHA256     string
}

// pipeline runs a backup tool and streams its standard output, compressed
// with zstd (content checksum on), into the store:
//
//	tool stdout ─▶ sniff ─▶ zstd ─▶ pipe ─▶ sha256 ─▶ PutStream (S3 multipart)
//
// Nothing is written to local disk. Memory is bounded by the store's part
// buffers and the encoder's window. The object becomes complete only if the
// tool exits 0 and every byte is stored; otherwise the upload is aborted
// and the tool killed.
type pipeline struct {
	cmd    *exec.Cmd
	sealer *crypt.Sealer // encrypts after zstd; nil for none
	sniff  io.Writer     // sees the raw output; nil for none
	onExit func()        // called once the tool has exited, before the upload ends
	// zstdOptions are added to the encoder's own; nil in binarc (tests
	// pass an invalid one to make the encoder fail).
	zstdOptions []zstd.EOption
}

// stderrTail keeps the last lines a tool wrote to stderr, for the error
// message when it fails.
type stderrTail struct {
	mu  sync.Mutex
	buf []byte
}

const stderrTailSize = 4 << 10

func (s *stderrTail) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf = append(s.buf, p...)
	if len(s.buf) > 2*stderrTailSize {
		s.buf = append(s.buf[:0], s.buf[len(s.buf)-stderrTailSize:]...)
	}
	return len(p), nil
}

func (s *stderrTail) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.buf
	if len(b) > stderrTailSize {
		b = b[len(b)-stderrTailSize:]
	}
	return strings.TrimSpace(string(b))
}

// lastLines is the end of a tool's stderr: the lines that say why it
// failed.
func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return len(p), nil
}

// run starts the tool and stores its output at key.
func (p *pipeline) run(ctx context.Context, sp streamPutter, key string) (streamed, error) {
	var stderr stderrTail
	p.cmd.Stderr = &stderr
	// The tool dies with binarc, even of a SIGKILL, rather than hold the
	// server's backup locks on its own.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		return streamed{}, err
	}
	name := p.cmd.Args[0]
	if f, ok := stdout.(*os.File); ok {
		growPipe(f)
	}
	if err := p.cmd.Start(); err != nil {
		return streamed{}, fmt.Errorf("start %s: %w", name, err)
	}

	pr, pw := io.Pipe()
	raw := &countWriter{}
	toolDone := make(chan error, 1)
	go func() {
		toolDone <- p.compress(stdout, pw, raw, &stderr, key)
	}()

	h := sha256.New()
	stored := &countWriter{}
	_, putErr := sp.PutStream(ctx, key, io.TeeReader(pr, io.MultiWriter(h, stored)), objstore.PutOptions{IfAbsent: true})
	// Unblock the compressor if the store gave up first.
	pr.CloseWithError(fmt.Errorf("the store stopped reading: %w", errOr(putErr, errors.New("upload ended"))))
	toolErr := <-toolDone
	switch {
	case ctx.Err() != nil:
		// A signal or a lost lease: the tool was killed for it.
		return streamed{}, fmt.Errorf("%s interrupted: %w", name, context.Cause(ctx))
	case toolErr != nil:
		// The tool's failure is the cause; the upload failed because of it.
		return streamed{}, toolErr
	case putErr != nil:
		return streamed{}, fmt.Errorf("store %s: %w", key, putErr)
	}
	return streamed{RawSize: raw.n, StoredSize: stored.n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// compress copies the tool's output through zstd into pw, then waits for
// the tool. The pipe reaches EOF only after a clean exit, so the store
// completes the object only then.
func (p *pipeline) compress(stdout io.Reader, pw *io.PipeWriter, raw *countWriter, stderr *stderrTail, key string) error {
	name := p.cmd.Args[0]
	out := io.WriteCloser(nopCloser{pw})
	if p.sealer != nil {
		sealed, err := p.sealer.SealStream(pw, key, nil)
		if err != nil {
			return p.abort(pw, fmt.Errorf("encrypt %s output: %w", name, err))
		}
		out = sealed
	}
	opts := append([]zstd.EOption{zstd.WithEncoderCRC(true),
		zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(encoderConcurrency())}, p.zstdOptions...)
	enc, err := zstd.NewWriter(out, opts...)
	if err != nil {
		return p.abort(pw, fmt.Errorf("compress %s output: zstd: %w", name, err))
	}
	dst := io.Writer(enc)
	if p.sniff != nil {
		dst = io.MultiWriter(enc, p.sniff)
	}
	// 1 MiB reads keep the per-call overhead of the encoder and hashes low;
	// the struct hides os.File's WriteTo, which would copy 32 KiB at a time.
	_, copyErr := io.CopyBuffer(io.MultiWriter(dst, raw), struct{ io.Reader }{stdout}, make([]byte, 1<<20))
	if copyErr != nil {
		// The store side failed: stop the tool rather than let it block.
		_ = p.cmd.Process.Kill()
		_, _ = io.Copy(io.Discard, stdout)
	}
	closeErr := enc.Close()
	if closeErr == nil && copyErr == nil {
		closeErr = out.Close() // the sealed object's last chunk
	}
	waitErr := p.cmd.Wait()
	if p.onExit != nil {
		p.onExit()
	}
	var toolErr error
	switch {
	case copyErr != nil:
		toolErr = nil // not the tool's fault; the store's error is reported
	case waitErr != nil:
		toolErr = fmt.Errorf("%s failed (%w); the end of what it said:\n%s", name, waitErr, lastLines(stderr.String(), 12))
	case closeErr != nil:
		toolErr = fmt.Errorf("compress %s output: %w", name, closeErr)
	}
	if toolErr != nil {
		pw.CloseWithError(toolErr)
		return toolErr
	}
	if copyErr != nil {
		pw.CloseWithError(copyErr)
		return nil
	}
	return pw.Close()
}

// abort ends a pipeline that cannot start compressing: the tool is killed
// and waited for (left alone it blocks on a full pipe, holding the
// server's backup locks), and the upload ends with err, so the store
// keeps no object.
func (p *pipeline) abort(pw *io.PipeWriter, err error) error {
	_ = p.cmd.Process.Kill()
	_ = p.cmd.Wait()
	if p.onExit != nil {
		p.onExit()
	}
	pw.CloseWithError(err)
	return err
}

// encoderConcurrency leaves half the cores to the backup tool and the
// upload. Measured with make bench (bench/snapshot.go) on 2 cores and 1 GiB
// of InnoDB data: zstd's fastest level on one goroutine stored the same
// bytes as the zstd CLI's default level 3 (within 0.3 %) at 1.1 times the
// speed of "mariabackup | zstd > file", where the default level, or two
// encoder goroutines, fought mariabackup and the S3 client for the CPU
// and fell to 0.5-0.85 times.
func encoderConcurrency() int {
	return max(1, runtime.GOMAXPROCS(0)/2)
}

// growPipe enlarges the tool's stdout pipe from Linux's 64 KiB to 1 MiB
// (the most an unprivileged process may set, /proc/sys/fs/pipe-max-size),
// so the tool reads ahead while binarc compresses instead of stopping every
// 64 KiB. A failure only costs speed.
func growPipe(f *os.File) {
	const fSetPipeSize = 1031 // F_SETPIPE_SZ, fcntl.h
	_, _, _ = syscall.Syscall(syscall.SYS_FCNTL, f.Fd(), fSetPipeSize, 1<<20)
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

func errOr(err, def error) error {
	if err != nil {
		return err
	}
	return def
}
