package webhook

import (
	"testing"
	"time"
)

func FuzzVerify(f *testing.F) {
	secret := []byte("fuzz-webhook-secret-fuzz-webhook-secret")
	now := time.Unix(1796000000, 0)
	body := []byte(`{"type":"handoff.completed"}`)
	f.Add(Sign(secret, now, body), body)
	f.Add("t=1,v1=00", []byte("x"))
	f.Add("v1=,t=,=", []byte{})
	f.Fuzz(func(t *testing.T, header string, b []byte) {
		if Verify(secret, header, b, now, DefaultTolerance) != nil {
			return
		}
		// A header that verifies is bound to its body: one more byte and it
		// no longer does.
		if Verify(secret, header, append(b, 'x'), now, DefaultTolerance) == nil {
			t.Fatalf("header %q verifies two bodies", header)
		}
	})
}
