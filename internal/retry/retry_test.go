package retry

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

func TestDoLogsAnOutageOnce(t *testing.T) {
	var buf bytes.Buffer
	o := &Outage{Log: zerolog.New(&buf), What: "store"}
	calls := 0
	v, err := Do(context.Background(), Backoff{Initial: time.Millisecond, Max: 2 * time.Millisecond}, o, nil, func() (int, error) {
		calls++
		if calls < 5 {
			return 0, errors.New("down")
		}
		return 42, nil
	})
	if v != 42 || err != nil || calls != 5 {
		t.Fatalf("Do = %d, %v after %d calls", v, err, calls)
	}
	out := buf.String()
	if strings.Count(out, "store unavailable") != 1 || strings.Count(out, "store is back") != 1 {
		t.Errorf("want one outage line and one recovery line:\n%s", out)
	}
	if o.Down() {
		t.Error("still down after success")
	}
}

func TestDoStopsOnPermanentAndCancel(t *testing.T) {
	o := &Outage{Log: zerolog.Nop(), What: "x"}
	bad := errors.New("bad password")
	_, err := Do(context.Background(), Backoff{}, o, func(e error) bool { return errors.Is(e, bad) }, func() (int, error) { return 0, bad })
	if !errors.Is(err, bad) {
		t.Fatalf("permanent error: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(20 * time.Millisecond); cancel() }()
	_, err = Do(ctx, Backoff{Initial: time.Hour}, o, nil, func() (int, error) { return 0, errors.New("down") })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
}

func TestBackoffCaps(t *testing.T) {
	b := Backoff{Initial: time.Millisecond, Max: 4 * time.Millisecond}
	for i := 0; i < 5; i++ {
		if err := b.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if b.cur != 4*time.Millisecond {
		t.Errorf("after 5 waits the delay is %s; want the cap", b.cur)
	}
	b.Reset()
	if b.cur != 0 {
		t.Error("Reset did not reset")
	}
}
