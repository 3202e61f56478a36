// Package redact keeps secrets out of what binarc prints: the password of
// a URL, blanked as text before the URL is parsed (a parser that stops at
// a '/', '#' or '?' in the password would otherwise echo the rest), and
// passwords and terminal control characters in statement text read from
// the archive.
package redact

import (
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"
)

// Mask replaces a secret in messages.
const Mask = "xxxxx"

// SplitURL cuts a URL's userinfo off as text: everything between "://" and
// the last '@' (a password may hold '/', '#', '?', ':' or '@'; a host holds
// none of them; an '@' further on, in a query, only blanks more). hostURL
// is the URL without it, safe to parse and print. ok is false when there
// is no userinfo.
func SplitURL(raw string) (user, password, hostURL string, hasPassword, ok bool) {
	scheme, rest, found := strings.Cut(raw, "://")
	if !found {
		return "", "", raw, false, false
	}
	at := strings.LastIndexByte(rest, '@')
	if at < 0 {
		return "", "", raw, false, false
	}
	userinfo := rest[:at]
	user, password, hasPassword = strings.Cut(userinfo, ":")
	return user, password, scheme + "://" + rest[at+1:], hasPassword, true
}

// URL is raw with the password of its userinfo blanked, for messages.
func URL(raw string) string {
	user, _, hostURL, hasPassword, ok := SplitURL(raw)
	if !ok {
		return raw
	}
	scheme, rest, _ := strings.Cut(hostURL, "://")
	if hasPassword {
		user += ":" + Mask
	}
	return scheme + "://" + user + "@" + rest
}

// passwordText finds passwords in SQL: IDENTIFIED BY 'x', IDENTIFIED BY
// PASSWORD 'hash', IDENTIFIED VIA plugin USING 'x', PASSWORD('x'), SET
// PASSWORD … = 'x', MASTER_PASSWORD='x'.
var passwordText = regexp.MustCompile(`(?is)(IDENTIFIED\s+(?:BY|WITH\s+\w+\s+(?:BY|AS|USING)|VIA\s+\w+\s+(?:USING|AS))\s+(?:PASSWORD\s*\(?\s*)?` +
	`|PASSWORD\s*\(\s*|SET\s+PASSWORD\b[^=']*=\s*(?:PASSWORD\s*\(\s*)?|MASTER_PASSWORD\s*=\s*)` +
	`('(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.|"")*")`)

// Statement makes statement text from the archive safe to print: passwords
// replaced by '<redacted>', and control characters (an escape sequence can
// rewrite a terminal) and invalid UTF-8 shown as \xNN.
func Statement(s string) string {
	return Control(passwordText.ReplaceAllString(s, "${1}'<redacted>'"))
}

// Control shows control characters and invalid UTF-8 as \xNN.
func Control(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}
