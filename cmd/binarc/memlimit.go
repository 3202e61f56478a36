package main

import (
	"os"
	"runtime/debug"
)

// streamMemoryLimit is the Go runtime's soft memory limit for binarc
// stream, unless GOMEMLIMIT says otherwise: the archiver is held to 100 MiB
// of RSS, and with the default GOGC a burst of short-lived buffers (a
// catch-up, a compaction) would let the heap double past it before a
// collection. The limit only makes the collector work earlier; what binarc
// keeps is bounded by --max-buffer and --segment-size. With the default
// flags that is at most about 43 MiB of live heap (--max-buffer's 32 MiB,
// the segment's encoder, the connection to the primary), and the binary's
// own mapped pages add about 25 MiB of RSS to what the runtime holds:
// 56 MiB leaves the collector room and RSS under 80 MiB.
const streamMemoryLimit = 56 << 20

func setStreamMemoryLimit() {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(streamMemoryLimit)
	}
}
