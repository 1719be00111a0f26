package flow

import (
	"encoding/base64"
	"net"
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

// remoteIP returns the host part of the request's peer address.
func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
