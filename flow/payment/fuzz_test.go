package payment_test

import (
	"errors"
	"testing"

	"github.com/bothandoff/caddy-bothandoff/flow"
	"github.com/bothandoff/caddy-bothandoff/tests/fakes/stripefake"
)

// FuzzWebhookPayload signs arbitrary bodies with the endpoint secret, as a
// compromised or buggy sender could, and feeds them to the webhook: each is
// refused as a bad request, ignored, or read as an event of a flow; never a
// panic or another error.
func FuzzWebhookPayload(f *testing.F) {
	for _, s := range []string{
		`{"id":"evt_1","object":"event","type":"checkout.session.completed","livemode":false,` +
			`"data":{"object":{"id":"cs_1","metadata":{"handoff_handle":"a.b","handoff_flow":"shop"}}}}`,
		`{"id":"evt_2","type":"checkout.session.expired","data":{"object":{}}}`,
		`{"id":"evt_3","type":"payment_intent.created"}`,
		`{"type":"checkout.session.completed","data":null}`,
		`[]`, `null`, `{"id":1}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		fx := newFixture(t, testKey)
		ev, err := fx.webhook(body, stripefake.Sign(body, whsec, fx.clock.Now()))
		switch {
		case err != nil && !errors.Is(err, flow.ErrBadRequest):
			t.Fatalf("error not a bad request: %v", err)
		case err == nil && ev != nil && (ev.ID == "" || ev.Handle == "" || ev.Settle == nil):
			t.Fatalf("incomplete event: %+v", ev)
		}
	})
}
