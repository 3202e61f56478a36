package main

import "sync"

// The processes the bench starts are internal/testenv Processes: each in a
// process group of its own, killed with the bench (Pdeathsig).

// cleanups runs registered functions once, last registered first: kill the
// servers, then remove their directories.
type cleanups struct {
	mu  sync.Mutex
	fns []func()
}

func (c *cleanups) add(fn func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.fns = append(c.fns, fn)
}

func (c *cleanups) run() {
	c.mu.Lock()
	fns := c.fns
	c.fns = nil
	c.mu.Unlock()
	for i := len(fns) - 1; i >= 0; i-- {
		fns[i]()
	}
}
