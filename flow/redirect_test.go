package flow

import "testing"

func TestSafeRedirectRefusesKnownBypasses(t *testing.T) {
	bad := []string{
		"//evil.example", "///evil.example", "/\\evil.example", "\\\\evil.example", "/\\/evil.example",
		"/%2fevil.example", "/%2F%2Fevil.example", "/%5cevil.example", "/%09/evil.example",
		"/\t/evil.example", "\t//evil.example", " //evil.example", "/ /evil.example",
		"/%0d%0aLocation:%20https://evil.example", "/\r\nLocation: x",
		"https://user@evil.example", "https://good.example@evil.example/", "http://:pass@evil.example",
		"javascript:alert(1)", "JaVaScRiPt:alert(1)", "data:text/html,x", "vbscript:x", "ftp://evil.example",
		"https:evil.example", "https:/evil.example", "https:///evil.example", "//evil.example/%2e%2e",
		"／／evil.example", "/\u3002evil.example", "https://evil.example\u2025/", "/\u00adx",
		"evil.example", "", "https://",
	}
	for _, target := range bad {
		if safeRedirect(target) == nil {
			t.Errorf("safeRedirect(%q) allowed", target)
		}
	}

	good := []string{
		"/checkout", "/checkout/step-2?x=1", "/handoff/finish?h=abc.def",
		"https://login.microsoftonline.com/common/oauth2/v2.0/authorize?client_id=x&state=a.b.c",
		"https://checkout.stripe.com/c/pay/cs_test_123#fragment", "http://127.0.0.1:9000/authorize",
	}
	for _, target := range good {
		if err := safeRedirect(target); err != nil {
			t.Errorf("safeRedirect(%q) = %v", target, err)
		}
	}
}

func TestSitePathMustBeSafe(t *testing.T) {
	for _, p := range []string{"//evil", "/a/../b", "/", "checkout", "/a b", "/a?x", "/\\evil"} {
		if (&Site{Path: p}).ValidatePath() == nil {
			t.Errorf("site path %q accepted", p)
		}
	}
	if err := (&Site{Path: "/checkout/new"}).ValidatePath(); err != nil {
		t.Errorf("good path refused: %v", err)
	}
}
