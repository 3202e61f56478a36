package main

import (
	"fmt"
	"os"

	"github.com/binarc/binarc/replication"
	"github.com/rs/zerolog"
)

// configs parses a --source that may name several servers
// (mysql://USER@HOST1:PORT1,HOST2:PORT2): all get the same user, password
// and binarc server id.
func (f sourceFlags) configs(log zerolog.Logger) ([]replication.Config, error) {
	cfgs, err := replication.ParseSourceURLs(f.Source)
	if err != nil {
		return nil, usageError{fmt.Errorf("--source: %w", err)}
	}
	if len(cfgs) == 1 {
		c, err := f.config(log)
		return []replication.Config{c}, err
	}
	one := f
	one.Source = fmt.Sprintf("mysql://%s@%s", cfgs[0].User, cfgs[0].Addr())
	c, err := one.config(log)
	if err != nil {
		return nil, err
	}
	if cfgs[0].Password != "" {
		log.Warn().Msg("the source URL carries a password, which shows in ps and shell history: prefer BINARC_SOURCE_PASSWORD or --source-password-file")
		c.Password = cfgs[0].Password
		if p, ok := os.LookupEnv("BINARC_SOURCE_PASSWORD"); ok {
			c.Password = p
		}
	}
	for i := range cfgs {
		cfgs[i].Password, cfgs[i].ServerID = c.Password, c.ServerID
	}
	return cfgs, nil
}
