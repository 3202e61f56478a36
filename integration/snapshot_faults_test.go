package integration

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// TestSnapshotFaults breaks snapshots mid-way, for real: mariabackup
// SIGKILLed, the S3 server down mid-upload, SIGTERM to binarc, and binarc
// itself SIGKILLed. After each, nothing looks like a complete snapshot, no
// multipart upload is left, what was stored before is untouched, and the
// replica's SQL thread runs.
func TestSnapshotFaults(t *testing.T) {
	t.Parallel()
	e := newSnapEnv(t)
	// 40 MiB that zstd cannot shrink: the upload spans several parts.
	e.seed(40)
	if out, code := e.run(e.snapshotArgs(physUser)...); code != 0 {
		t.Fatalf("the first snapshot failed (%d):\n%s", code, out)
	}
	good := e.newest()
	before, uploads := e.bucketState()
	if len(uploads) != 0 {
		t.Fatalf("uploads left after a good snapshot: %v", uploads)
	}

	// check is what every fault must leave behind.
	check := func(t *testing.T, p *proc, code int, want string) {
		t.Helper()
		out := p.out.String()
		if code == 0 {
			t.Errorf("binarc exited 0 after the fault:\n%s", out)
		}
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
		if strings.Contains(out, replPass) {
			t.Errorf("output shows the password:\n%s", out)
		}
		e.waitSQLRunning(30 * time.Second)
		after, uploads := e.bucketState()
		if len(uploads) != 0 {
			t.Errorf("multipart uploads left behind: %v", uploads)
		}
		for k := range after {
			if strings.Contains(k, "/snapshot/") && !strings.HasSuffix(k, "lease.json") && before[k] == "" {
				t.Errorf("the failed snapshot left %s", k)
			}
		}
		delete(after, "archive/"+e.layout().SnapshotLeaseKey())
		prev := maps.Clone(before)
		delete(prev, "archive/"+e.layout().SnapshotLeaseKey())
		if !maps.Equal(after, prev) {
			t.Errorf("the bucket changed:\n before %v\n after  %v", prev, after)
		}
		if m := e.newest(); m.ID != good.ID {
			t.Errorf("newest complete snapshot is %s, want the one before the fault, %s", m.ID, good.ID)
		}
	}

	t.Run("backup tool killed", func(t *testing.T) {
		p := e.start(e.snapshotArgs(physUser)...)
		pid := waitChild(t, p, "mariabackup", "--backup")
		time.Sleep(300 * time.Millisecond) // mid-stream
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		check(t, p, p.wait(t, time.Minute), "mariabackup failed")
	})

	t.Run("SIGTERM", func(t *testing.T) {
		p := e.start(e.snapshotArgs(physUser)...)
		waitChild(t, p, "mariabackup", "--backup")
		time.Sleep(300 * time.Millisecond)
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		check(t, p, p.wait(t, time.Minute), "interrupted")
	})

	t.Run("store down mid-upload", func(t *testing.T) {
		p := e.start(e.snapshotArgs(physUser)...)
		e.waitUpload(p)
		e.s3.Stop()
		// Longer than the SDK's retries of a part (5 attempts, backoff
		// capped at 5 s), so the upload fails rather than resumes; binarc
		// then keeps trying to abort it until the store is back.
		time.Sleep(20 * time.Second)
		e.s3.Start()
		check(t, p, p.wait(t, 2*time.Minute), "upload part")
	})

	t.Run("binarc killed, the next run cleans up", func(t *testing.T) {
		p := e.start(e.snapshotArgs(physUser)...)
		e.waitUpload(p)
		p.kill()
		// Nothing could clean up: the upload stays and the SQL thread
		// stays stopped, until the next run.
		if _, uploads := e.bucketState(); len(uploads) == 0 {
			t.Fatalf("no upload left by a SIGKILLed binarc; the test did not kill it mid-upload")
		}
		if st := e.replica.SlaveStatus(t); st["Slave_SQL_Running"] != "No" {
			t.Fatalf("SQL thread %s after binarc was killed mid-backup; want No", st["Slave_SQL_Running"])
		}
		out, code := e.run(e.snapshotArgs(physUser)...)
		if code != 0 {
			t.Fatalf("the next snapshot failed (%d):\n%s", code, out)
		}
		for _, want := range []string{"removed unfinished uploads", "already stopped"} {
			if !strings.Contains(out, want) {
				t.Errorf("the next run did not log %q:\n%s", want, out)
			}
		}
		e.waitSQLRunning(10 * time.Second)
		if _, uploads := e.bucketState(); len(uploads) != 0 {
			t.Errorf("uploads left after the next run: %v", uploads)
		}
		e.replica.WaitCaughtUp(t, e.primary, time.Minute)
	})
}

// waitUpload waits until the snapshot has a multipart upload in progress.
func (e *snapEnv) waitUpload(p *proc) {
	e.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		out, err := e.s3.Client().ListMultipartUploads(context.Background(), &s3.ListMultipartUploadsInput{Bucket: aws.String(e.s3.Bucket)})
		if err == nil && len(out.Uploads) > 0 {
			return
		}
		select {
		case <-p.done:
			e.t.Fatalf("binarc exited before it started a multipart upload:\n%s", p.out.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	e.t.Fatalf("no multipart upload within a minute:\n%s", p.out.String())
}

// TestSnapshotBadInput: each mistake fails at once, says what to do, shows
// no password, and leaves the replica replicating.
func TestSnapshotBadInput(t *testing.T) {
	t.Parallel()
	e := newSnapEnv(t)
	e.primary.Exec(t,
		"CREATE USER 'weak'@'127.0.0.1' IDENTIFIED BY '"+replPass+"'",
		"GRANT PROCESS, SLAVE MONITOR, REPLICATION SLAVE ADMIN ON *.* TO 'weak'@'127.0.0.1'",
		"CREATE USER 'nothing'@'127.0.0.1' IDENTIFIED BY '"+replPass+"'")
	e.replica.WaitCaughtUp(t, e.primary, time.Minute)
	after := func(t *testing.T) {
		t.Helper()
		if st := e.replica.SlaveStatus(t); st["Slave_SQL_Running"] != "Yes" {
			t.Errorf("the replica's SQL thread is %s after a refused snapshot", st["Slave_SQL_Running"])
		}
		if l := e.snapshots(); len(l) != 0 {
			t.Errorf("a refused snapshot left %+v", l)
		}
	}
	t.Run("not a replica", func(t *testing.T) {
		out, code := e.run("snapshot", "--source", e.primary.SourceURL(physUser, ""), "--store", e.store, "--cluster", e.cluster)
		expectFailure(t, out, code, "not a replica", "--allow-primary", "point --source at a replica")
		after(t)
	})
	t.Run("mariabackup missing", func(t *testing.T) {
		out, code := e.runEnv([]string{"PATH=" + t.TempDir()}, e.snapshotArgs(physUser)...)
		expectFailure(t, out, code, "mariabackup", "not found", "install the Debian package mariadb-backup")
		after(t)
	})
	t.Run("mariadb-dump missing", func(t *testing.T) {
		out, code := e.runEnv([]string{"PATH=" + t.TempDir()}, e.snapshotArgs(logUser, "--method", "logical")...)
		expectFailure(t, out, code, "mariadb-dump", "install the Debian package mariadb-client")
		after(t)
	})
	t.Run("missing backup privileges", func(t *testing.T) {
		out, code := e.run(e.snapshotArgs("weak")...)
		expectFailure(t, out, code, "lacks RELOAD, BINLOG MONITOR",
			"GRANT RELOAD, PROCESS, BINLOG MONITOR, SLAVE MONITOR, REPLICATION SLAVE ADMIN ON *.* TO 'weak'")
		after(t)
	})
	t.Run("no privileges at all", func(t *testing.T) {
		out, code := e.run(e.snapshotArgs("nothing", "--method", "logical")...)
		expectFailure(t, out, code, "lacks SLAVE MONITOR", "GRANT SELECT, SHOW VIEW, TRIGGER, EVENT, SLAVE MONITOR, REPLICATION SLAVE ADMIN")
		after(t)
	})
	t.Run("wrong password", func(t *testing.T) {
		out, code := e.runEnv([]string{"BINARC_SOURCE_PASSWORD=wrong-Pa55"}, e.snapshotArgs(physUser)...)
		expectFailure(t, out, code, "access denied", "BINARC_SOURCE_PASSWORD")
		after(t)
	})
	t.Run("unparsable schedule", func(t *testing.T) {
		out, code := e.run(e.snapshotArgs(physUser, "--schedule", "every tuesday")...)
		expectFailure(t, out, code, `"every tuesday"`, "@weekly", "15 3 * * 0")
		if code != 2 {
			t.Errorf("exit %d for a bad schedule; want 2", code)
		}
		after(t)
	})
	t.Run("bad method", func(t *testing.T) {
		out, code := e.run(e.snapshotArgs(physUser, "--method", "tape")...)
		expectFailure(t, out, code, "tape", "physical")
	})
	t.Run("second snapshot at once", func(t *testing.T) {
		first := e.startEnv([]string{"BINARC_TEST_SNAPSHOT_HOLD=30s"}, e.snapshotArgs(physUser)...)
		e.waitLog(first, "holding before the backup")
		out, code := e.run(e.snapshotArgs(physUser)...)
		expectFailure(t, out, code, "binarc snapshot", "already")
		_ = first.cmd.Process.Signal(syscall.SIGTERM)
		if code := first.wait(t, time.Minute); code == 0 {
			t.Errorf("the held snapshot, stopped by SIGTERM, exited 0")
		}
		e.waitSQLRunning(10 * time.Second)
	})
	t.Run("verify a missing snapshot", func(t *testing.T) {
		out, code := e.run("verify", "--store", e.store, "--cluster", e.cluster, "--snapshot", "20260101T000000Z-physical")
		expectFailure(t, out, code, "no manifest", "binarc ls")
	})
}

// mariabackupFailingOnce is a stand-in for mariabackup that fails its
// first backup (exit 3) and runs the real one after that:
// $BINARC_MARIABACKUP only says where the tool is.
func mariabackupFailingOnce(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	wrapper := filepath.Join(dir, "mariabackup")
	script := "#!/bin/sh\n" +
		"if [ \"$1\" != --version ] && [ ! -e " + dir + "/failed-once ]; then touch " + dir + "/failed-once; echo 'simulated failure' >&2; exit 3; fi\n" +
		"exec mariabackup \"$@\"\n"
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return wrapper
}

// TestSnapshotSchedule runs binarc snapshot --schedule: a failed snapshot
// (the tool fails) is logged and the next one runs; SIGTERM stops it
// cleanly.
func TestSnapshotSchedule(t *testing.T) {
	t.Parallel()
	e := newSnapEnv(t)
	wrapper := mariabackupFailingOnce(t)
	p := e.startEnv([]string{"BINARC_MARIABACKUP=" + wrapper}, e.snapshotArgs(physUser, "--schedule", "@every 2s")...)
	e.waitLog(p, "snapshot complete")
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.wait(t, time.Minute); code != 0 {
		t.Fatalf("scheduled binarc exited %d after SIGTERM; want 0:\n%s", code, p.out.String())
	}
	out := p.out.String()
	if n := len(logLines(out, "next snapshot at")); n < 2 {
		t.Errorf("'next snapshot at' logged %d times; want one per run", n)
	}
	if len(logLines(out, "snapshot failed; the next one runs")) != 1 || !strings.Contains(out, "simulated failure") {
		t.Errorf("the failed first snapshot was not logged with the tool's error:\n%s", out)
	}
	e.waitSQLRunning(10 * time.Second)
	if l := e.snapshots(); len(l) == 0 || !l[len(l)-1].Complete {
		t.Errorf("no complete snapshot from the schedule: %+v", l)
	}
}

// waitLog waits until p logged a message containing substr.
func (e *env) waitLog(p *proc, substr string) {
	e.t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for len(logLines(p.out.String(), substr)) == 0 {
		if time.Now().After(deadline) {
			e.t.Fatalf("binarc did not log %q within 2 minutes:\n%s", substr, p.out.String())
		}
		select {
		case <-p.done:
			e.t.Fatalf("binarc exited before logging %q:\n%s", substr, p.out.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
}
