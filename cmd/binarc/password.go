package main

import (
	"fmt"
	"os"
	"strings"
)

// password picks a server's password, in order of preference: the file
// (first line; flag names it in errors), the environment variable env, or
// what the URL carried. Neither the file's path nor its content is logged.
func password(fromURL, env, file, flag string) (string, error) {
	p := fromURL
	if v, ok := os.LookupEnv(env); ok {
		p = v
	}
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", usageError{fmt.Errorf("%s: %w", flag, err)}
		}
		p = strings.TrimRight(strings.SplitN(string(b), "\n", 2)[0], "\r")
	}
	return p, nil
}
