package main

import (
	"github.com/binarc/binarc/replication"
	"github.com/rs/zerolog"
)

// configs parses a --source that may name several servers
// (mysql://USER@HOST1:PORT1,HOST2:PORT2): all get the same user, password,
// binarc server id and TLS settings.
func (f sourceFlags) configs(log zerolog.Logger) ([]replication.Config, error) {
	cfgs, err := f.sources(log).Parse()
	if err != nil {
		return nil, usageError{err}
	}
	return cfgs, nil
}
