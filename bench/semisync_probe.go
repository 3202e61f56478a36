package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/binarc/binarc/internal/testenv"
)

// countSegments lists the segments binarc stored for cluster.
func (b *bench) countSegments(clusterName string) (int, error) {
	c := b.s3.Client()
	n := 0
	p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String(b.s3.Bucket), Prefix: aws.String(s3Prefix + "/" + clusterName + "/binlog/")})
	for p.HasMorePages() {
		page, err := p.NextPage(b.ctx)
		if err != nil {
			return n, err
		}
		for _, o := range page.Contents {
			if strings.HasSuffix(aws.ToString(o.Key), ".zst") && strings.Count(aws.ToString(o.Key), "/") >= 5 {
				n++
			}
		}
	}
	return n, nil
}

// scrapeMetrics reads binarc's /metrics at the address it logged, as
// name -> value for the series without labels but cluster.
func scrapeMetrics(logPath string) (map[string]float64, error) {
	data, err := os.ReadFile(logPath)
	if err != nil {
		return nil, err
	}
	var addr string
	for _, line := range strings.Split(string(data), "\n") {
		var l struct {
			Message string `json:"message"`
			Addr    string `json:"addr"`
		}
		if json.Unmarshal([]byte(line), &l) == nil && strings.HasPrefix(l.Message, "serving metrics") {
			addr = l.Addr
		}
	}
	if addr == "" {
		return nil, fmt.Errorf("no metrics address in %s", logPath)
	}
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	m := map[string]float64{}
	for _, line := range strings.Split(string(body), "\n") {
		name, rest, ok := strings.Cut(line, "{")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(rest, ' ')
		if v, err := strconv.ParseFloat(rest[i+1:], 64); err == nil && i > 0 && !strings.Contains(rest[:i], ",") {
			m[name] = v
		}
	}
	return m, nil
}

// meanSince is a histogram's mean in milliseconds over what it observed
// between two scrapes.
func meanSince(now, then map[string]float64, histogram string) float64 {
	if n := now[histogram+"_count"] - then[histogram+"_count"]; n > 0 {
		return 1000 * (now[histogram+"_sum"] - then[histogram+"_sum"]) / n
	}
	return 0
}

// countLogLines counts the occurrences of substr in a log file.
func countLogLines(path, substr string) int {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	return strings.Count(string(data), substr)
}

// semiSyncCounters are the primary's cumulative semi-sync counters: the
// commits that did not wait for an acknowledgement, and the waits and
// their total time (microseconds).
type semiSyncCounters struct{ noTx, txWaitTime, txWaits int }

// primaryCounters reads the primary's cumulative semi-sync counters.
func (b *bench) primaryCounters() (semiSyncCounters, error) {
	var c semiSyncCounters
	for _, v := range []struct {
		name string
		dst  *int
	}{{"Rpl_semi_sync_master_no_tx", &c.noTx}, {"Rpl_semi_sync_master_tx_wait_time", &c.txWaitTime}, {"Rpl_semi_sync_master_tx_waits", &c.txWaits}} {
		var err error
		if *v.dst, err = b.statusInt(v.name); err != nil {
			return c, err
		}
	}
	return c, nil
}

func (b *bench) statusInt(name string) (int, error) {
	v, err := b.statusString(name)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(v)
}

func (b *bench) statusString(name string) (string, error) {
	conn, err := b.db.Dial(b.ctx)
	if err != nil {
		return "", err
	}
	defer testenv.Quit(conn)
	r, err := conn.Execute("SHOW GLOBAL STATUS LIKE '" + name + "'")
	if err != nil {
		return "", err
	}
	defer r.Close()
	v, err := r.GetString(0, 1)
	if err != nil {
		return "", fmt.Errorf("status %s: %w", name, err)
	}
	return strings.Clone(v), nil
}
