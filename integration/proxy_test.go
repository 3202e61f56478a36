package integration

import (
	"testing"

	"github.com/binarc/binarc/internal/testenv"
)

// startProxy forwards a loopback port to target through testenv.Proxy,
// the fault proxy the tests and the bench share: latency per request,
// connections cut, frozen or refused, a target that moves. It is closed
// when the test ends.
func startProxy(t *testing.T, target string) *testenv.Proxy {
	t.Helper()
	p, err := testenv.StartProxy(target, 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}
