package main

import (
	"os"

	"github.com/binarc/binarc/replication"
)

// password picks a server's password by replication.PasswordFrom's order:
// the file (first line; flag names it in errors), the environment variable
// env, or what the URL carried.
func password(fromURL, env, file, flag string) (string, error) {
	v, set := os.LookupEnv(env)
	p, err := replication.PasswordFrom{File: file, FileFlag: flag, Env: v, EnvSet: set}.Pick(fromURL)
	if err != nil {
		return "", usageError{err}
	}
	return p, nil
}
