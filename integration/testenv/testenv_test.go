package testenv

import (
	"context"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

func TestS3Server(t *testing.T) {
	t.Parallel()
	began := time.Now()
	srv := StartS3(t)
	t.Logf("versitygw ready with a bucket in %v", time.Since(began))

	ctx := context.Background()
	cli := srv.Client()
	put := func(bucket, key, body string) {
		t.Helper()
		_, err := cli.PutObject(ctx, &s3.PutObjectInput{
			Bucket: aws.String(bucket), Key: aws.String(key), Body: strings.NewReader(body),
		})
		if err != nil {
			t.Fatalf("put %s/%s: %v", bucket, key, err)
		}
	}
	get := func(bucket, key string) string {
		t.Helper()
		out, err := cli.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
		if err != nil {
			t.Fatalf("get %s/%s: %v", bucket, key, err)
		}
		defer out.Body.Close()
		b, err := io.ReadAll(out.Body)
		if err != nil {
			t.Fatalf("get %s/%s: %v", bucket, key, err)
		}
		return string(b)
	}

	put(srv.Bucket, "a/b/object", "hello")
	list, err := cli.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(srv.Bucket), Prefix: aws.String("a/")})
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	if len(list.Contents) != 1 || aws.ToString(list.Contents[0].Key) != "a/b/object" || aws.ToInt64(list.Contents[0].Size) != 5 {
		t.Fatalf("list a/: got %+v, want the one 5-byte object a/b/object", list.Contents)
	}

	// An outage keeps the data and the endpoint.
	srv.Stop()
	shortCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
	_, err = cli.HeadBucket(shortCtx, &s3.HeadBucketInput{Bucket: aws.String(srv.Bucket)})
	cancel()
	if err == nil {
		t.Fatal("HeadBucket succeeded while the server was stopped")
	}
	began = time.Now()
	srv.Start()
	t.Logf("versitygw restarted in %v", time.Since(began))
	if got := get(srv.Bucket, "a/b/object"); got != "hello" {
		t.Fatalf("after restart got %q, want %q", got, "hello")
	}

	other := srv.NewBucket(t)
	if other == srv.Bucket {
		t.Fatalf("NewBucket returned the existing bucket %s", other)
	}
	put(other, "x", "y")

	if got, want := srv.StoreURL("archive/prod"), "s3://"+srv.Bucket+"/archive/prod"; got != want {
		t.Errorf("StoreURL = %q, want %q", got, want)
	}
	env := strings.Join(srv.Env(), "\n")
	for _, want := range []string{"AWS_ENDPOINT_URL_S3=" + srv.Endpoint, "BINARC_S3_PATH_STYLE=true", "AWS_REGION=us-east-1"} {
		if !strings.Contains(env, want) {
			t.Errorf("Env() lacks %s:\n%s", want, env)
		}
	}
}

func TestMariaDB(t *testing.T) {
	t.Parallel()
	began := time.Now()
	db := StartMariaDB(t, MariaDBOptions{ServerID: 7, MaxBinlogSize: 4096})
	t.Logf("mariadbd initialised and ready in %v", time.Since(began))

	if got := db.Query(t, "SELECT @@server_id, @@log_bin, @@binlog_format, NULL"); len(got) != 1 ||
		strings.Join(got[0], ",") != "7,1,ROW,NULL" {
		t.Fatalf("server settings: got %q, want [[7 1 ROW NULL]]", got)
	}
	db.Exec(t,
		"CREATE DATABASE app",
		"CREATE TABLE app.t (id INT PRIMARY KEY, v VARCHAR(20))",
		"INSERT INTO app.t VALUES (1, 'one'), (2, 'two')",
		"FLUSH BINARY LOGS",
		"INSERT INTO app.t VALUES (3, 'three')",
	)
	files := db.BinlogFiles(t)
	if len(files) < 2 {
		t.Fatalf("BinlogFiles = %q, want at least 2 after FLUSH BINARY LOGS", files)
	}
	for _, f := range files {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("binlog file listed in the index: %v", err)
		}
	}
	if n := len(db.Query(t, "SHOW BINARY LOGS")); n != len(files) {
		t.Errorf("SHOW BINARY LOGS has %d files, BinlogFiles %d", n, len(files))
	}

	db.CreateReplicationUser(t, "repl", "s3cr'et")
	if got := db.Query(t, "SHOW GRANTS FOR 'repl'@'127.0.0.1'"); len(got) != 1 ||
		!strings.Contains(got[0][0], "REPLICATION SLAVE") || !strings.Contains(got[0][0], "BINLOG MONITOR") {
		t.Errorf("grants for repl: %q", got)
	}
	if got, want := db.SourceURL("repl", "pw"), "mysql://repl:pw@"+db.Addr(); got != want {
		t.Errorf("SourceURL = %q, want %q", got, want)
	}
	if db.MariadbBinlog() == "" {
		t.Error("MariadbBinlog: mariadb-binlog not found")
	}

	count := func() string {
		t.Helper()
		return db.Query(t, "SELECT COUNT(*) FROM app.t")[0][0]
	}
	port := db.Port

	began = time.Now()
	db.Stop(t)
	t.Logf("mariadbd clean shutdown in %v", time.Since(began))
	began = time.Now()
	db.Start(t)
	t.Logf("mariadbd restarted after a clean stop in %v", time.Since(began))
	if db.Port != port {
		t.Fatalf("port changed across restart: %d -> %d", port, db.Port)
	}
	if got := count(); got != "3" {
		t.Fatalf("after restart: %s rows, want 3", got)
	}

	db.Exec(t, "INSERT INTO app.t VALUES (4, 'four')")
	db.Kill(t)
	began = time.Now()
	db.Start(t)
	t.Logf("mariadbd restarted after SIGKILL in %v", time.Since(began))
	if got := count(); got != "4" {
		t.Fatalf("after crash: %s rows, want 4 (a committed row was lost)", got)
	}
	if got := len(db.BinlogFiles(t)); got <= len(files) {
		t.Errorf("binlog files after two restarts: %d, want more than %d", got, len(files))
	}
}

func TestMariaDBNoLogBin(t *testing.T) {
	t.Parallel()
	db := StartMariaDB(t, MariaDBOptions{NoLogBin: true, GTIDStrict: true})
	if got := db.Query(t, "SELECT @@log_bin, @@gtid_strict_mode, @@server_id"); strings.Join(got[0], ",") != "0,1,1" {
		t.Fatalf("got %q, want [[0 1 1]]", got)
	}
}

func TestBinaryPath(t *testing.T) {
	if _, err := BinaryPath("binarc-no-such-binary"); err == nil {
		t.Error("BinaryPath found a binary that does not exist")
	}
	p, err := BinaryPath("binarc-no-such-binary", "mariadbd", "mysqld")
	if err != nil || !strings.HasSuffix(p, "/mariadbd") {
		t.Errorf("BinaryPath(..., mariadbd) = %q, %v", p, err)
	}
}
