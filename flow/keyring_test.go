package flow_test

import (
	"crypto/rand"
	"testing"

	"github.com/bothandoff/caddy-bothandoff/flow"
)

func TestSealBindsContext(t *testing.T) {
	kr, err := flow.NewKeyring([]byte("k-k-k-k-k-k-k-k-k-k-k-k-k-k-k-k-"))
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := kr.Seal(rand.Reader, []byte("access token"), "result:f1")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := kr.Open(sealed, "result:f1"); err != nil || string(got) != "access token" {
		t.Fatalf("Open = %q, %v", got, err)
	}
	if _, err := kr.Open(sealed, "result:f2"); err == nil {
		t.Error("opened under another flow's context")
	}
	sealed[len(sealed)-1] ^= 1
	if _, err := kr.Open(sealed, "result:f1"); err == nil {
		t.Error("opened a tampered value")
	}

	other, _ := flow.NewKeyring([]byte("o-o-o-o-o-o-o-o-o-o-o-o-o-o-o-o-"))
	sealed, _ = kr.Seal(rand.Reader, []byte("x"), "c")
	if _, err := other.Open(sealed, "c"); err == nil {
		t.Error("opened with another key")
	}
	if _, err := flow.NewKeyring([]byte("short")); err == nil {
		t.Error("short state key accepted")
	}
}

func TestMACSeparatesParts(t *testing.T) {
	kr, _ := flow.NewKeyring([]byte("k-k-k-k-k-k-k-k-k-k-k-k-k-k-k-k-"))
	if flow.Equal(kr.MAC("ab", "c"), kr.MAC("a", "bc")) {
		t.Error("MAC of (ab, c) equals MAC of (a, bc)")
	}
}
