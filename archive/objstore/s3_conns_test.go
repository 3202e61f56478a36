package objstore_test

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/binarc/binarc/archive/objstore"
)

// TestS3KeepsItsConnections: bursts of 16 uploads at once (16 semi-sync
// groups in flight) reuse the connections of the burst before. The SDK's
// pool kept 10 a host: every burst dialled 6 again, each a TCP and a TLS
// handshake on the way to an acknowledgement. A stand-in server that
// answers every PUT after 20 ms counts the connections.
func TestS3KeepsItsConnections(t *testing.T) {
	var dials atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		time.Sleep(20 * time.Millisecond) // every upload of a burst is in flight at once
		w.Header().Set("ETag", `"0"`)
	}))
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			dials.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	s, err := objstore.NewS3(t.Context(), objstore.S3Config{Bucket: "b", Endpoint: srv.URL, Region: "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("k", "s", "")})
	if err != nil {
		t.Fatal(err)
	}
	const width, bursts = 16, 4
	for b := 0; b < bursts; b++ {
		var wg sync.WaitGroup
		for i := 0; i < width; i++ {
			wg.Go(func() {
				if _, err := s.Put(t.Context(), "k"+strconv.Itoa(b*width+i), []byte("v"), objstore.PutOptions{}); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
	}
	// The first burst dials its 16; later ones find them idle (a few more
	// when a request starts before another's connection is back).
	if n := dials.Load(); n > width+4 {
		t.Fatalf("%d connections for %d bursts of %d uploads: the pool drops connections between bursts", n, bursts, width)
	}
}
