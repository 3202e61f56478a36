package manpage

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"

	"github.com/alecthomas/kong"
)

type testCLI struct {
	Level string `default:"info" enum:"debug,info" env:"T_LEVEL" help:"Log level."`
	Run   struct {
		Store   string `required:"" env:"T_STORE" placeholder:"URL" help:"Where it goes: s3://B/P or C:\\dir."`
		Compact bool   `default:"true" negatable:"" help:"Compact files."`
		Verbose bool   `short:"v" help:"Say more."`
	} `cmd:"" help:"Run it.\n\n.A line that looks like a roff request."`
	Files struct {
		Fetch struct {
			File []string `arg:"" help:"Files to fetch."`
			Dir  string   `required:"" type:"path" env:"T_STORE" help:"Into this directory."`
		} `cmd:"" help:"Fetch files."`
	} `cmd:"" help:"Work with files."`
}

// TestWrite renders a small command line with groff: it must take the page
// without a warning (-ww), and the text must have every command, flag,
// default and environment variable, escaped characters as written.
func TestWrite(t *testing.T) {
	var c testCLI
	parser, err := kong.New(&c, kong.Name("tool"), kong.Description("Does things. Well … ’twice’."))
	if err != nil {
		t.Fatal(err)
	}
	var page bytes.Buffer
	if err := Write(&page, parser.Model, Page{Section: "1", Date: "2026-12-06", Source: "tool 1.0", Manual: "User Commands", SeeAlso: []string{"mariadb(1)"}}); err != nil {
		t.Fatal(err)
	}
	out := renderWithGroff(t, page.Bytes())
	for _, want := range []string{
		"tool - Does things", "Well … ’twice’.", "tool run", "tool files fetch FILE", "--store=URL", "s3://B/P or C:\\dir.",
		"--[no-]compact", "-v, --verbose", `--level="info"`, "One of: debug, info.", "Default: info.",
		"--dir=STRING", "Environment: T_STORE.", ".A line that looks like a roff request.", "T_STORE", "--dir, --store", "mariadb(1)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the rendered page has no %q:\n%s", want, out)
		}
	}
}

// renderWithGroff formats page as man would, failing on any warning.
func renderWithGroff(t *testing.T, page []byte) string {
	t.Helper()
	groff, err := exec.LookPath("groff")
	if err != nil {
		t.Skip("groff not found (apt-get install groff-base): the man page is not rendered")
	}
	cmd := exec.Command(groff, "-man", "-Tutf8", "-ww", "-P-cbou", "-rLL=200n")
	cmd.Stdin = bytes.NewReader(page)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil || stderr.Len() > 0 {
		t.Fatalf("groff: %v\n%s\npage:\n%s", err, stderr.String(), page)
	}
	return stdout.String()
}
