package snapshot

import (
	"strings"
	"testing"
)

func TestCheckDataDir(t *testing.T) {
	err := checkDataDir(ServerInfo{DataDir: "/nonexistent/mysql/"}, false)
	if err == nil || !strings.Contains(err.Error(), "not on this host") || !strings.Contains(err.Error(), "--method logical") {
		t.Errorf("missing datadir: %v", err)
	}
	dir := t.TempDir()
	if err := checkDataDir(ServerInfo{DataDir: dir, Hostname: "elsewhere"}, false); err != nil {
		t.Errorf("local datadir without host check: %v", err)
	}
	if err := checkDataDir(ServerInfo{DataDir: dir, Hostname: "elsewhere"}, true); err == nil || !strings.Contains(err.Error(), `"elsewhere"`) {
		t.Errorf("host check on another host: %v", err)
	}
}
