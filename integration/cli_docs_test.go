package integration

import (
	"bytes"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// TestManPage renders `binarc man` with groff as man does: no warning,
// and every command and a sample of flags and variables are on the page.
func TestManPage(t *testing.T) {
	t.Parallel()
	groff, err := exec.LookPath("groff")
	if err != nil {
		t.Skip("groff not found (apt-get install groff-base)")
	}
	page, err := exec.Command(binarcPath, "man").Output()
	if err != nil {
		t.Fatalf("binarc man: %v", err)
	}
	render := exec.Command(groff, "-man", "-Tutf8", "-ww", "-P-cbou", "-rLL=300n")
	render.Stdin = bytes.NewReader(page)
	var out, warnings bytes.Buffer
	render.Stdout, render.Stderr = &out, &warnings
	if err := render.Run(); err != nil || warnings.Len() > 0 {
		t.Fatalf("groff: %v\n%s", err, warnings.String())
	}
	for _, want := range []string{
		"binarc stream", "binarc ls", "binarc binlog fetch", "binarc binlog events", "binarc snapshot", "binarc prune",
		"binarc verify", "binarc restore", "binarc serve", "binarc completion", "binarc man",
		"--store=URL", "--[no-]compact", "--semi-sync-durability=", "Environment: BINARC_SOURCE_PASSWORD_FILE.", "BINARC_IDENTITY_FILE",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the man page has no %q", want)
		}
	}
}

// TestShellCompletion: bash takes `binarc completion -c bash` and
// registers binarc as its own completer (complete -C), and binarc answers
// as bash then asks it (COMP_LINE, COMP_POINT; the word and the one
// before as arguments): commands, flags, a flag's allowed values.
func TestShellCompletion(t *testing.T) {
	t.Parallel()
	code, err := exec.Command(binarcPath, "completion", "-c", "bash").Output()
	if err != nil {
		t.Fatalf("binarc completion -c bash: %v", err)
	}
	if bash, err := exec.LookPath("bash"); err == nil {
		out, err := exec.Command(bash, "-c", string(code)+"\ncomplete -p binarc").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "-C '"+binarcPath+"' binarc") {
			t.Errorf("bash did not register binarc's completion (%v):\n%s", err, out)
		}
	}
	for _, shell := range []string{"zsh", "fish"} {
		code, err := exec.Command(binarcPath, "completion", "-c", shell).Output()
		if err != nil || !strings.Contains(string(code), binarcPath) {
			t.Errorf("binarc completion -c %s: %v\n%s", shell, err, code)
		}
	}

	for line, want := range map[string][]string{
		"binarc str":                     {"stream"},
		"binarc binlog ":                 {"events", "fetch"},
		"binarc restore --repl":          {"--replay", "--replay-threads"},
		"binarc stream --source-tls ":    {"disable", "preferred", "required", "verify-ca", "verify-full"},
		"binarc snapshot --method log":   {"logical"},
		"binarc stream --semi-sync-dura": {"--semi-sync-durability"},
	} {
		got := completeLine(t, line)
		for _, w := range want {
			if !strings.Contains("\n"+got+"\n", "\n"+w+"\n") {
				t.Errorf("completing %q: no %q in\n%s", line, w, got)
			}
		}
	}
}

// completeLine runs binarc as bash's complete -C does.
func completeLine(t *testing.T, line string) string {
	t.Helper()
	words := strings.Split(line, " ")
	cur, prev := words[len(words)-1], ""
	if len(words) > 1 {
		prev = words[len(words)-2]
	}
	cmd := exec.Command(binarcPath, "binarc", cur, prev)
	cmd.Env = append(os.Environ(), "COMP_LINE="+line, "COMP_POINT="+strconv.Itoa(len(line)))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("completing %q: %v\n%s", line, err, out)
	}
	return strings.TrimSpace(string(out))
}
