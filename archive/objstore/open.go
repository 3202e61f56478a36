package objstore

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/binarc/binarc/internal/redact"
)

// storeURLForms is the usage hint every Open error ends with.
const storeURLForms = "use s3://BUCKET/PREFIX or file:///PATH or a directory path"

// Open opens the store a URL names:
//
//	s3://BUCKET/PREFIX[?endpoint=URL&region=REGION&path_style=true]
//	file:///ABSOLUTE/PATH
//	DIRECTORY (a plain relative or absolute path)
//
// An S3 store's bucket is checked with CheckBucket, so a missing bucket or
// refused credentials fail here rather than at the first write. A local
// directory is created if missing.
func Open(ctx context.Context, rawURL string) (Store, error) {
	if rawURL == "" {
		return nil, fmt.Errorf("store URL is empty; %s", storeURLForms)
	}
	if !strings.Contains(rawURL, "://") {
		// "s3:bucket" is a mistyped URL far more often than a directory
		// name; ./s3:bucket still names such a directory.
		if scheme, _, ok := strings.Cut(rawURL, ":"); ok && isURLScheme(scheme) && len(scheme) > 1 {
			return nil, fmt.Errorf("store URL %q: looks like a URL without \"//\"; %s (write ./%s for a directory of that name)",
				rawURL, storeURLForms, rawURL)
		}
		return openLocal(rawURL, rawURL)
	}
	shown := redactUserinfo(rawURL)
	u, err := url.Parse(rawURL)
	if err != nil {
		// Not %w: url.Error would quote the URL, password and all.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("store URL %q: %v; %s", shown, err, storeURLForms)
	}
	switch u.Scheme {
	case "s3":
		return openS3(ctx, u, shown)
	case "file":
		if u.Host != "" && u.Host != "localhost" {
			return nil, fmt.Errorf("store URL %q: file URL with host %q; write file:///PATH (three slashes) with an absolute path", shown, u.Host)
		}
		if u.Path == "" || u.RawQuery != "" {
			return nil, fmt.Errorf("store URL %q: want file:///ABSOLUTE/PATH and no query", shown)
		}
		return openLocal(u.Path, shown)
	case "":
		return nil, fmt.Errorf("store URL %q: no scheme; %s", shown, storeURLForms)
	default:
		return nil, fmt.Errorf("store URL %q: unsupported scheme %q; %s", shown, u.Scheme, storeURLForms)
	}
}

func openLocal(dir, shown string) (Store, error) {
	s, err := NewLocal(filepath.Clean(dir))
	if err != nil {
		return nil, fmt.Errorf("store URL %q: %w", shown, err)
	}
	return s, nil
}

func openS3(ctx context.Context, u *url.URL, shown string) (Store, error) {
	if u.Host == "" {
		return nil, fmt.Errorf("store URL %q: no bucket; %s", shown, storeURLForms)
	}
	if u.User != nil {
		return nil, fmt.Errorf("store URL %q: credentials do not go in the URL; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or AWS_PROFILE", shown)
	}
	if err := ValidateBucketName(u.Host); err != nil {
		return nil, fmt.Errorf("store URL %q: %w", shown, err)
	}
	if err := ValidatePrefix(u.Path); err != nil {
		return nil, fmt.Errorf("store URL %q: %w", shown, err)
	}
	cfg := S3Config{Bucket: u.Host, Prefix: strings.Trim(u.Path, "/")}
	for name, values := range u.Query() {
		if len(values) != 1 {
			return nil, fmt.Errorf("store URL %q: parameter %q given %d times", shown, name, len(values))
		}
		v := values[0]
		switch name {
		case "endpoint":
			if e, err := url.Parse(v); err != nil || (e.Scheme != "http" && e.Scheme != "https") || e.Host == "" {
				return nil, fmt.Errorf("store URL %q: endpoint %q is not an http:// or https:// URL", shown, redactURL(v))
			}
			cfg.Endpoint = v
		case "region":
			cfg.Region = v
		case "path_style":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return nil, fmt.Errorf("store URL %q: path_style=%q: want true or false", shown, v)
			}
			cfg.PathStyle = b
		default:
			return nil, fmt.Errorf("store URL %q: unknown parameter %q; known are endpoint, region and path_style", shown, name)
		}
	}
	s, err := NewS3(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if err := s.CheckBucket(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// redactUserinfo replaces the user:password of a URL's authority with
// "xxxxx", without parsing it (it may not parse), so errors never show it.
func redactUserinfo(rawURL string) string {
	// As text, before any parsing: a secret holding '/' or '#' would end
	// the parser's authority early.
	if _, _, hostURL, _, ok := redact.SplitURL(rawURL); ok {
		scheme, rest, _ := strings.Cut(hostURL, "://")
		return scheme + "://" + redact.Mask + "@" + rest
	}
	return rawURL
}

// isURLScheme reports whether s is a syntactically valid URL scheme
// (RFC 3986: a letter, then letters, digits, "+", "-" or ".").
func isURLScheme(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case i > 0 && (c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.'):
		default:
			return false
		}
	}
	return true
}

// ValidateBucketName checks an S3 bucket name against S3's naming rules
// (3 to 63 lowercase letters, digits, dots and hyphens, starting and
// ending with a letter or digit, no "..", not an IP address) before it
// reaches a request: a name such as ".." would otherwise become part of
// a request path.
func ValidateBucketName(name string) error {
	const rule = "S3 bucket names are 3 to 63 lowercase letters, digits, dots and hyphens, starting and ending with a letter or digit"
	if len(name) < 3 || len(name) > 63 {
		return fmt.Errorf("bucket name %q has %d characters: %s", name, len(name), rule)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-') {
			return fmt.Errorf("bucket name %q holds %q: %s", name, string(c), rule)
		}
	}
	if !isAlnum(name[0]) || !isAlnum(name[len(name)-1]) || strings.Contains(name, "..") {
		return fmt.Errorf("bucket name %q: %s, with no \"..\"", name, rule)
	}
	if ip := net.ParseIP(name); ip != nil {
		return fmt.Errorf("bucket name %q is an IP address: %s", name, rule)
	}
	return nil
}

func isAlnum(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }

// ValidatePrefix checks the key prefix of a store URL: path segments
// that are not empty, "." or "..", and no control characters, so that
// every key binarc makes stays below the prefix it was given.
func ValidatePrefix(p string) error {
	trimmed := strings.Trim(p, "/")
	if trimmed == "" {
		return nil
	}
	if len(trimmed) > 512 {
		return fmt.Errorf("prefix of %d characters: keep it under 512 (keys are appended to it)", len(trimmed))
	}
	for _, seg := range strings.Split(trimmed, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("prefix %q holds an empty, \".\" or \"..\" path segment: name a plain folder such as s3://BUCKET/binarc/prod", trimmed)
		}
		for _, r := range seg {
			if r < 0x20 || r == 0x7f || r == '\\' {
				return fmt.Errorf("prefix %q holds a control character or backslash: name a plain folder such as s3://BUCKET/binarc/prod", trimmed)
			}
		}
	}
	return nil
}
