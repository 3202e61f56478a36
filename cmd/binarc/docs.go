package main

import (
	"os"

	"github.com/alecthomas/kong"
	"github.com/binarc/binarc/internal/manpage"
	kongcompletion "github.com/jotaen/kong-completion"
)

// completionCmd prints the shell code that turns on tab completion; the
// completions themselves come from the command line's own model
// (kongcompletion.Register in run), so they follow every flag added.
type completionCmd = kongcompletion.Completion

// manCmd prints the manual page, made from the same help text as --help.
type manCmd struct{}

func (manCmd) Run(kctx *kong.Context) error {
	return manpage.Write(os.Stdout, kctx.Model, manpage.Page{
		Section: "1", Source: "binarc " + version, Manual: "binarc",
		SeeAlso: []string{"mariadb-binlog(1)", "mariadb-backup(1)", "the README and docs/ in the binarc repository"},
	})
}
