package serve

import (
	"bufio"
	"net"
	"sync/atomic"
)

// bufferedConn batches a dump's event packets into fewer writes: a
// stream of small transactions is hundreds of thousands of packets, one
// write(2) each through go-mysql's packet layer otherwise. Buffering is
// switched on after the handshake (whose packets must go at once); the
// session flushes after each command and before any wait.
type bufferedConn struct {
	net.Conn
	w  *bufio.Writer
	on atomic.Bool
}

func newBufferedConn(c net.Conn) *bufferedConn {
	return &bufferedConn{Conn: c, w: bufio.NewWriterSize(c, 64<<10)}
}

func (b *bufferedConn) Write(p []byte) (int, error) {
	if b.on.Load() {
		return b.w.Write(p)
	}
	return b.Conn.Write(p)
}

// Flush sends what is buffered.
func (b *bufferedConn) Flush() error { return b.w.Flush() }
