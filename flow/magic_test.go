package flow_test

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/bothandoff/caddy-bothandoff/flow"
)

func TestNewCodeIsUniform(t *testing.T) {
	// A seeded source makes the test repeatable; the code under test is the
	// same that reads crypto/rand in production.
	src := rand.NewChaCha8([32]byte{7})
	const n = 60000
	var counts [10]int
	for range n {
		code, err := flow.NewCode(src, 6)
		if err != nil {
			t.Fatal(err)
		}
		if len(code) != 6 || strings.Trim(code, "0123456789") != "" {
			t.Fatalf("code %q is not 6 digits", code)
		}
		counts[code[0]-'0']++ // the leading digit shows any bias first
	}

	// Chi-square with 9 degrees of freedom: 27.9 is the 0.1% critical value.
	var chi float64
	for _, c := range counts {
		d := float64(c) - n/10.0
		chi += d * d / (n / 10.0)
	}
	if chi > 27.9 {
		t.Errorf("leading digits %v are not uniform (chi-square %.1f)", counts, chi)
	}
}

func TestNewCodeKeepsLeadingZeros(t *testing.T) {
	zeros := bytes.NewReader(make([]byte, 64))
	code, err := flow.NewCode(zeros, 8)
	if err != nil || code != "00000000" {
		t.Errorf("got %q, %v; want 00000000", code, err)
	}
	for _, digits := range []int{5, 13} {
		if _, err := flow.NewCode(zeros, digits); err == nil {
			t.Errorf("%d digits accepted", digits)
		}
	}
}

func TestNormalizeCode(t *testing.T) {
	cases := []struct{ in, want string }{
		{"123456", "123456"},
		{"123 456", "123456"},
		{" 123-456\n", "123456"},
		{"<p>123456</p>", "123456"},
		{"<at>Helper 2</at> 123 456", "123456"},
		{"<at id=\"0\">Bot9</at>&nbsp;<p>654&#32;321</p>", "654321"},
		{"my code is 123456, thanks", "123456"},
		{"", ""},
		{strings.Repeat("1", 2000), ""},
	}
	for _, c := range cases {
		if got := flow.NormalizeCode(c.in); got != c.want {
			t.Errorf("NormalizeCode(%q) = %q; want %q", c.in, got, c.want)
		}
	}
}

func TestGroupCode(t *testing.T) {
	cases := map[string]string{"123456": "123 456", "12345678": "12 345 678", "123456789012": "123 456 789 012"}
	for in, want := range cases {
		if got := flow.GroupCode(in); got != want {
			t.Errorf("GroupCode(%q) = %q; want %q", in, got, want)
		}
	}
}
