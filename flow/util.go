package flow

import (
	"encoding/base64"
	"net/http"
)

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// origin returns the scheme and host the browser used.
func origin(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}
