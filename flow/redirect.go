package flow

import (
	"fmt"
	"net/url"
	"strings"
)

// safeRedirect reports whether the handler may send a browser to target:
// either a path on this site that no browser reads as another host, or an
// absolute http(s) URL with a host and without user information. Every
// redirect to a provider or a task path passes through it.
func safeRedirect(target string) error {
	if target == "" || len(target) > 8<<10 {
		return fmt.Errorf("%w: redirect target empty or too long", ErrProvider)
	}
	for i := 0; i < len(target); i++ {
		// Browsers drop tabs and line breaks inside URLs and read a
		// backslash as a slash; non-ASCII may be folded into either.
		if c := target[i]; c <= ' ' || c == '\\' || c >= 0x7f {
			return fmt.Errorf("%w: redirect target has a forbidden character", ErrProvider)
		}
	}
	if strings.HasPrefix(target, "/") {
		return safeLocalPath(target)
	}

	u, err := url.Parse(target)
	switch {
	case err != nil:
		return fmt.Errorf("%w: redirect target is not a URL", ErrProvider)
	case u.Scheme != "https" && u.Scheme != "http":
		return fmt.Errorf("%w: redirect target must be http or https", ErrProvider)
	case u.Host == "" || u.User != nil || u.Opaque != "":
		return fmt.Errorf("%w: redirect target must name a host and no user", ErrProvider)
	}
	return nil
}

// safeLocalPath checks a path on this site: a second slash, or one hidden
// by percent-encoding, would make it a link to another host.
func safeLocalPath(p string) error {
	if strings.HasPrefix(p, "//") || hidesSeparator(p) {
		return fmt.Errorf("%w: redirect path could lead off the site", ErrProvider)
	}
	u, err := url.Parse(p)
	if err != nil || u.Scheme != "" || u.Host != "" {
		return fmt.Errorf("%w: redirect path is not a plain path", ErrProvider)
	}
	return nil
}

// hidesSeparator reports whether a path holds a percent-encoded slash,
// backslash, tab or line break, which some clients decode before they
// resolve the path.
func hidesSeparator(p string) bool {
	lower := strings.ToLower(p)
	for _, enc := range []string{"%2f", "%5c", "%09", "%0a", "%0d"} {
		if strings.Contains(lower, enc) {
			return true
		}
	}
	return false
}
