package serve

import (
	"bufio"
	"net"
)

// bufferedConn batches a dump's event packets into fewer writes: a
// stream of small transactions is hundreds of thousands of packets, one
// write(2) each through go-mysql's packet layer otherwise. Buffering
// starts after the handshake (whose packets must go at once), and so
// does its 64 KiB buffer: a client that never logs in costs none. The
// session flushes after each command and before any wait. Reads, writes
// and start happen on the connection's one goroutine.
type bufferedConn struct {
	net.Conn
	w *bufio.Writer
}

func newBufferedConn(c net.Conn) *bufferedConn {
	return &bufferedConn{Conn: c}
}

// start turns buffering on.
func (b *bufferedConn) start() { b.w = bufio.NewWriterSize(b.Conn, 64<<10) }

func (b *bufferedConn) Write(p []byte) (int, error) {
	if b.w != nil {
		return b.w.Write(p)
	}
	return b.Conn.Write(p)
}

// Flush sends what is buffered.
func (b *bufferedConn) Flush() error {
	if b.w == nil {
		return nil
	}
	return b.w.Flush()
}
