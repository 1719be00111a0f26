package flow

import (
	"crypto/rand"
	"strings"
	"testing"
	"time"
)

// Fuzz targets for every parser of hostile input. Seeds live in
// testdata/fuzz; "make fuzz" runs each for longer.

func FuzzLinkToken(f *testing.F) {
	secret := []byte("fuzz-secret-fuzz-secret-fuzz-secret!")
	key, _ := SecretKey("", secret)
	signer, _ := SecretSigner("", secret)
	now := time.Unix(1796000000, 0)
	v, _ := NewVerifier(VerifierConfig{Keys: []LinkKey{key}, Now: func() time.Time { return now }})
	good, _ := signer.SignLink(Link{Flow: "checkout", Ref: Ref{ChannelID: "c", ServiceURL: "https://s/",
		Conversation: Conversation{ID: "v"}, User: Account{ID: "u"}}, Audience: "aud", Now: now})
	f.Add(good)
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add("a.b.c")

	f.Fuzz(func(t *testing.T, token string) {
		claims, err := v.Link(token, "aud")
		if err != nil {
			return
		}
		// Whatever is accepted is a complete, valid link.
		if claims.Ref.Validate() != nil || !ValidFlowName(claims.Flow) || claims.ID == "" {
			t.Fatalf("accepted an incomplete link: %+v", claims)
		}
		if _, err := v.API(token, "aud"); err == nil {
			t.Fatal("a link was accepted as an API token")
		}
	})
}

func FuzzNormalizeCode(f *testing.F) {
	for _, s := range []string{"123 456", "<at>Bot 1</at> 123456", "&#49;23", "<p>12<b>34</b>56</p>", "<<>>"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := NormalizeCode(s)
		if strings.Trim(out, "0123456789") != "" {
			t.Fatalf("NormalizeCode(%q) = %q holds non-digits", s, out)
		}
		if NormalizeCode(out) != out {
			t.Fatalf("NormalizeCode is not idempotent on %q", out)
		}
	})
}

func FuzzSiteComplete(f *testing.F) {
	for _, s := range []string{`{"orderId":"1"}`, "failed", "failed:out_of_stock", "failed:BAD", "[1]", "null", "{"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out, err := parseComplete(s)
		if err != nil {
			return
		}
		switch {
		case out.Failure != "":
			if !failurePattern.MatchString(out.Failure) {
				t.Fatalf("failure code %q escaped the pattern", out.Failure)
			}
		case len(out.Result) == 0 || out.Result[0] != '{':
			t.Fatalf("result %q is not a JSON object", out.Result)
		}
	})
}

func FuzzHandle(f *testing.F) {
	f.Add("AAAAAAAAAAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAA")
	f.Add("..")
	f.Fuzz(func(t *testing.T, s string) {
		h, err := ParseHandle(s)
		if err != nil {
			return
		}
		if back, err := ParseHandle(h.String()); err != nil || back != h {
			t.Fatalf("handle %q does not round-trip", s)
		}
	})
}

func FuzzOpenSealed(f *testing.F) {
	kr, _ := NewKeyring([]byte("fuzz-state-key-fuzz-state-key-32"))
	sealed, _ := kr.Seal(rand.Reader, []byte("token"), "result:x")
	f.Add(sealed)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		out, err := kr.Open(b, "result:x")
		if err == nil && len(b) > 0 && string(out) != "token" {
			t.Fatalf("opened a forged value: %q", out)
		}
	})
}
