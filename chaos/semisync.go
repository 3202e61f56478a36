package chaos

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Fallback is a time the writable master had given up waiting for
// binarc's acknowledgement (Rpl_semi_sync_master_status OFF, after
// rpl_semi_sync_master_timeout): commits it acknowledged then were not
// protected. The checker reads it from the server, not from binarc.
type Fallback struct {
	Server string    `json:"server"`
	From   time.Time `json:"from"`
	To     time.Time `json:"to"` // zero: until the server went away
}

func (f Fallback) String() string {
	to := "its end"
	if !f.To.IsZero() {
		to = f.To.UTC().Format("15:04:05.000")
	}
	return fmt.Sprintf("%s %s–%s", f.Server, f.From.UTC().Format("15:04:05.000"), to)
}

// covers reports whether a commit acknowledged on server at t falls in
// the fallback, with slack for the sampling period on either side.
func (f Fallback) covers(server string, t time.Time, slack time.Duration) bool {
	return f.Server == server && !t.Before(f.From.Add(-slack)) && (f.To.IsZero() || !t.After(f.To.Add(slack)))
}

// fallbackSampler polls the writable master's semi-sync status.
type fallbackSampler struct {
	c     *cluster
	every time.Duration
	mu    sync.Mutex
	list  []Fallback
	open  *Fallback
	stop  chan struct{}
	wg    sync.WaitGroup
}

func startFallbackSampler(c *cluster, every time.Duration) *fallbackSampler {
	s := &fallbackSampler{c: c, every: every, stop: make(chan struct{})}
	s.wg.Add(1)
	go s.run()
	return s
}

func (s *fallbackSampler) run() {
	defer s.wg.Done()
	t := time.NewTicker(s.every)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		w := s.c.Writable()
		ctx, cancel := context.WithTimeout(context.Background(), s.every)
		rows, err := w.db.Query(ctx, "SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_master_status'")
		cancel()
		now := time.Now()
		s.mu.Lock()
		if s.open != nil && s.open.Server != w.name {
			s.close(now) // the writes moved: that server's fallback ended with it
		}
		if err == nil && len(rows) == 1 {
			switch off := rows[0][1] == "OFF"; {
			case off && s.open == nil:
				s.open = &Fallback{Server: w.name, From: now}
			case !off && s.open != nil:
				s.close(now)
			}
		}
		s.mu.Unlock()
	}
}

func (s *fallbackSampler) close(at time.Time) {
	s.open.To = at
	s.list = append(s.list, *s.open)
	s.open = nil
}

// finish stops the sampler and returns the fallbacks it saw.
func (s *fallbackSampler) finish() []Fallback {
	close(s.stop)
	s.wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.open != nil {
		s.list = append(s.list, *s.open)
	}
	return s.list
}
