// Package manpage writes a kong command line's help as a man page (roff
// with the man(7) macros), so that `man binarc` and `binarc --help` say
// the same thing from the same text: the commands, their arguments and
// flags with defaults, allowed values and environment variables.
package manpage

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/alecthomas/kong"
)

// Page is what the man page's header and footer say besides the help.
type Page struct {
	Section string // "1"
	Date    string // shown in the footer
	Source  string // "binarc 1.2.0"
	Manual  string // "User Commands"
	SeeAlso []string
}

// Write writes app's help as a man page to w.
func Write(w io.Writer, app *kong.Application, p Page) error {
	var b strings.Builder
	fmt.Fprintf(&b, ".TH %s %s %s %s %s\n", quote(strings.ToUpper(app.Name)), quote(p.Section), quote(p.Date), quote(p.Source), quote(p.Manual))
	b.WriteString(".SH NAME\n")
	fmt.Fprintf(&b, "%s \\- %s\n", app.Name, text(firstSentence(app.Help)))
	b.WriteString(".SH SYNOPSIS\n")
	fmt.Fprintf(&b, ".B %s\n.I COMMAND\n.RI [ FLAGS ]\n", app.Name)
	b.WriteString(".SH DESCRIPTION\n")
	paragraphs(&b, app.Help)
	b.WriteString(".PP\nEvery flag can also be given by the environment variable named beside it.\n")
	if flags := visibleFlags(app.Flags); len(flags) > 0 {
		b.WriteString(".SH GLOBAL FLAGS\n")
		writeFlags(&b, flags)
	}
	b.WriteString(".SH COMMANDS\n")
	for _, n := range app.Leaves(true) {
		writeCommand(&b, n)
	}
	writeEnvironment(&b, app)
	if len(p.SeeAlso) > 0 {
		b.WriteString(".SH SEE ALSO\n")
		b.WriteString(text(strings.Join(p.SeeAlso, ", ")) + "\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// writeCommand writes one command: its path and arguments, its help and
// its own flags (a parent's flags are listed with the parent's command).
func writeCommand(b *strings.Builder, n *kong.Node) {
	fmt.Fprintf(b, ".SS %s\n", quote(commandLine(n)))
	paragraphs(b, n.Help)
	if n.Detail != "" {
		paragraphs(b, n.Detail)
	}
	for _, a := range n.Positional {
		fmt.Fprintf(b, ".TP\n.I %s\n%s\n", quote(strings.ToUpper(a.Name)), text(a.Help))
	}
	var flags []*kong.Flag
	for p := n; p != nil && p.Type != kong.ApplicationNode; p = p.Parent {
		flags = append(flags, visibleFlags(p.Flags)...)
	}
	writeFlags(b, flags)
}

// commandLine is "binarc binlog fetch FILE…".
func commandLine(n *kong.Node) string {
	line := n.FullPath()
	for _, a := range n.Positional {
		arg := strings.ToUpper(a.Name)
		if !a.Required {
			arg = "[" + arg + "]"
		}
		line += " " + arg
	}
	return line
}

// writeFlags writes flags as a tagged list: name and value, then the help,
// the allowed values, the default and the environment variable.
func writeFlags(b *strings.Builder, flags []*kong.Flag) {
	for _, f := range flags {
		b.WriteString(".TP\n")
		b.WriteString(flagTag(f) + "\n")
		help := f.Help
		if f.Enum != "" {
			help += " One of: " + strings.Join(f.EnumSlice(), ", ") + "."
		}
		if f.HasDefault && f.Default != "" {
			help += " Default: " + f.Default + "."
		}
		b.WriteString(text(help) + "\n")
		if len(f.Envs) > 0 {
			fmt.Fprintf(b, ".br\nEnvironment: \\fB%s\\fR.\n", text(strings.Join(f.Envs, ", ")))
		}
	}
}

// flagTag is "\fB\-\-store\fR=\fIURL\fR", or "\fB\-\-[no\-]compact\fR".
func flagTag(f *kong.Flag) string {
	name := "\\-\\-" + text(f.Name)
	if f.Tag != nil && f.Tag.Negatable != "" {
		name = "\\-\\-[no\\-]" + text(f.Name)
	}
	if f.Short != 0 {
		name = "\\-" + string(f.Short) + ", " + name
	}
	tag := "\\fB" + name + "\\fR"
	if !f.IsBool() && !f.IsCounter() {
		tag += "=\\fI" + text(f.FormatPlaceHolder()) + "\\fR"
	}
	return tag
}

// writeEnvironment lists every environment variable a flag reads, with
// the flags that read it.
func writeEnvironment(b *strings.Builder, app *kong.Application) {
	byEnv := map[string][]string{}
	var walk func(*kong.Node)
	walk = func(n *kong.Node) {
		for _, f := range visibleFlags(n.Flags) {
			for _, e := range f.Envs {
				flag := "--" + f.Name
				if len(byEnv[e]) == 0 || byEnv[e][len(byEnv[e])-1] != flag {
					byEnv[e] = append(byEnv[e], flag)
				}
			}
		}
		for _, c := range n.Children {
			if !c.Hidden {
				walk(c)
			}
		}
	}
	walk(app.Node)
	if len(byEnv) == 0 {
		return
	}
	envs := make([]string, 0, len(byEnv))
	for e := range byEnv {
		envs = append(envs, e)
	}
	sort.Strings(envs)
	b.WriteString(".SH ENVIRONMENT\n")
	for _, e := range envs {
		fmt.Fprintf(b, ".TP\n.B %s\n%s\n", text(e), text(strings.Join(dedupe(byEnv[e]), ", ")))
	}
}

func visibleFlags(flags []*kong.Flag) []*kong.Flag {
	var out []*kong.Flag
	for _, f := range flags {
		if !f.Hidden && f.Name != "help" {
			out = append(out, f)
		}
	}
	return out
}

func dedupe(s []string) []string {
	sort.Strings(s)
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

// paragraphs writes help text, a blank line starting a new paragraph.
func paragraphs(b *strings.Builder, s string) {
	for _, p := range strings.Split(strings.TrimSpace(s), "\n\n") {
		if p = strings.TrimSpace(p); p != "" {
			b.WriteString(".PP\n" + text(p) + "\n")
		}
	}
}

func firstSentence(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.Index(s, ". "); i >= 0 {
		s = s[:i]
	}
	return strings.TrimSuffix(s, ".")
}

// text escapes s for roff: backslashes, hyphens (so that flags stay
// copyable as ASCII), a control character at the start of a line, and
// every character outside ASCII as its code point (\[u2026]), which every
// roff reads without preconv.
func text(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	s = strings.ReplaceAll(s, "-", `\-`)
	var b strings.Builder
	for _, r := range s {
		if r < 0x80 {
			b.WriteRune(r)
		} else {
			fmt.Fprintf(&b, `\[u%04X]`, r)
		}
	}
	s = b.String()
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, ".") || strings.HasPrefix(l, "'") {
			lines[i] = `\&` + l
		}
	}
	return strings.Join(lines, "\n")
}

// quote makes s one macro argument.
func quote(s string) string {
	return `"` + strings.ReplaceAll(text(s), `"`, `\(dq`) + `"`
}
