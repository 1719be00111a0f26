package flow_test

import (
	"testing"
	"time"
)

// BenchmarkLinkVerify checks one link token: signature, claims and the
// conversation reference, the first step of every link start.
func BenchmarkLinkVerify(b *testing.B) {
	now := time.Unix(1_800_000_000, 0)
	key, signer := secretPair(b, "k1")
	v := verifier(b, now, key)
	tok, err := signer.SignLink(link(now))
	if err != nil {
		b.Fatal(err)
	}

	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Link(tok, aud); err != nil {
			b.Fatal(err)
		}
	}
}
