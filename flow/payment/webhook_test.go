package payment_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/bothandoff/caddy-bothandoff/flow"
	"github.com/bothandoff/caddy-bothandoff/flow/payment"
	"github.com/bothandoff/caddy-bothandoff/tests/fakes/stripefake"
)

// paidFlow returns a flow whose session the customer paid.
func (fx *fixture) paidFlow(id string, p stripefake.Payment) (*flow.Flow, stripefake.Session) {
	fx.t.Helper()
	f := fx.newFlow(id)
	fx.begin(f)
	s := fx.session()
	if err := fx.fake.Pay(s.ID, p); err != nil {
		fx.t.Fatal(err)
	}
	return f, s
}

func TestWebhookSettles(t *testing.T) {
	fx := newFixture(t, testKey)
	f, s := fx.paidFlow("flow-a", stripefake.Payment{})

	body, sig := fx.event("checkout.session.completed", s.ID)
	ev, err := fx.webhook(body, sig)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := fx.fake.LastEvent("checkout.session.completed", s.ID)
	if ev == nil || ev.ID != want.ID || ev.Handle != f.Handle {
		t.Fatalf("event = %+v; want ID %s and handle %s", ev, want.ID, f.Handle)
	}
	out, err := ev.Settle(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	if res := result(t, out); res.SessionID != s.ID || res.Amount != 1999 {
		t.Errorf("result = %+v", res)
	}

	// The return after the webhook comes to the same result.
	ret, err := fx.paidReturn(f, s.ID)
	if err != nil || !bytes.Equal(ret.Result, out.Result) {
		t.Errorf("return after webhook: %s, %v; want %s", ret.Result, err, out.Result)
	}
}

func TestWebhookRefusals(t *testing.T) {
	fx := newFixture(t, testKey)
	_, s := fx.paidFlow("flow-a", stripefake.Payment{})
	body, _ := fx.event("checkout.session.completed", s.ID)
	now := fx.clock.Now()

	cases := []struct {
		name   string
		body   []byte
		header string
		want   error
	}{
		{"unsigned", body, "", payment.ErrBadSignature},
		{"other secret", body, stripefake.Sign(body, "whsec_other", now), payment.ErrBadSignature},
		{"changed body", bytes.Replace(body, []byte("1999"), []byte("1"), 1),
			stripefake.Sign(body, whsec, now), payment.ErrBadSignature},
		{"malformed header", body, "garbage", payment.ErrBadSignature},
		{"old", body, stripefake.Sign(body, whsec, now.Add(-6*time.Minute)), payment.ErrStaleWebhook},
		{"from the future", body, stripefake.Sign(body, whsec, now.Add(6*time.Minute)),
			payment.ErrStaleWebhook},
		{"two timestamps", body, stripefake.Sign(body, whsec, now) + ",t=1", payment.ErrBadSignature},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ev, err := fx.webhook(c.body, c.header)
			if !errors.Is(err, c.want) || !errors.Is(err, flow.ErrBadRequest) || ev != nil {
				t.Errorf("got %+v, %v; want %v", ev, err, c.want)
			}
		})
	}

	// Within the tolerance either way is fine.
	for _, skew := range []time.Duration{-4 * time.Minute, 4 * time.Minute} {
		if _, err := fx.webhook(body, stripefake.Sign(body, whsec, now.Add(skew))); err != nil {
			t.Errorf("signed %v from now: %v", skew, err)
		}
	}
}

func TestWebhookModes(t *testing.T) {
	// A live fake makes live events; a provider with a test key refuses
	// them, and the other way round.
	live := newFixture(t, liveKey)
	_, s := live.paidFlow("flow-a", stripefake.Payment{})
	liveBody, liveSig := live.event("checkout.session.completed", s.ID)

	test := newFixture(t, testKey)
	_, s = test.paidFlow("flow-b", stripefake.Payment{})
	testBody, testSig := test.event("checkout.session.completed", s.ID)

	if _, err := test.webhook(liveBody, liveSig); !errors.Is(err, payment.ErrWrongMode) {
		t.Errorf("live event at a test key: %v; want ErrWrongMode", err)
	}
	if _, err := live.webhook(testBody, testSig); !errors.Is(err, payment.ErrWrongMode) {
		t.Errorf("test event at a live key: %v; want ErrWrongMode", err)
	}
	if ev, err := live.webhook(liveBody, liveSig); err != nil || ev == nil {
		t.Errorf("live event at a live key: %+v, %v", ev, err)
	}
}

func TestWebhookIgnores(t *testing.T) {
	fx := newFixture(t, testKey)
	_, s := fx.paidFlow("flow-a", stripefake.Payment{})
	body, _ := fx.event("checkout.session.completed", s.ID)
	sign := func(b []byte) string { return stripefake.Sign(b, whsec, fx.clock.Now()) }

	other := bytes.Replace(body, []byte("checkout.session.completed"), []byte("charge.refunded"), 1)
	foreign := bytes.Replace(body, []byte(`"handoff_flow":"shop"`), []byte(`"handoff_flow":"gift"`), 1)
	bare := bytes.Replace(body, []byte(`"handoff_handle"`), []byte(`"someone_else"`), 1)
	for name, b := range map[string][]byte{
		"event of another type": other, "session of another flow": foreign,
		"session made elsewhere": bare,
	} {
		ev, err := fx.webhook(b, sign(b))
		if err != nil || ev != nil {
			t.Errorf("%s: %+v, %v; want acknowledged", name, ev, err)
		}
	}
}

func TestSettleAgreesWithReturn(t *testing.T) {
	fx := newFixture(t, testKey)
	f, s := fx.paidFlow("flow-a", stripefake.Payment{Async: true})
	settle := func(typ string) *flow.Outcome {
		t.Helper()
		body, sig := fx.event(typ, s.ID)
		ev, err := fx.webhook(body, sig)
		if err != nil {
			t.Fatal(err)
		}
		out, err := ev.Settle(context.Background(), f)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}

	if out := settle("checkout.session.completed"); out == nil || !out.Waiting {
		t.Fatalf("completed, unpaid: %+v; want waiting", out)
	}
	if err := fx.fake.SettleAsync(s.ID, false); err != nil {
		t.Fatal(err)
	}
	// Delivered late, the first event still reads the session as it is now.
	if out := settle("checkout.session.completed"); out == nil || out.Failure != payment.FailPayment {
		t.Errorf("completed event after the failure: %+v; want %s", out, payment.FailPayment)
	}
	if out := settle("checkout.session.async_payment_failed"); out == nil ||
		out.Failure != payment.FailPayment {
		t.Errorf("async failure: %+v; want %s", out, payment.FailPayment)
	}
}

func TestSettleLeavesOpenAndReplacedSessions(t *testing.T) {
	fx := newFixture(t, testKey)
	f := fx.newFlow("flow-a")
	fx.begin(f)
	old := fx.session()
	if err := fx.fake.Expire(old.ID); err != nil {
		t.Fatal(err)
	}

	// While the flow lives, an expired session changes nothing: the user
	// may open the link again for a new one.
	body, sig := fx.event("checkout.session.expired", old.ID)
	ev, err := fx.webhook(body, sig)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := ev.Settle(context.Background(), f); out != nil || err != nil {
		t.Errorf("expired session: %+v, %v; want no change", out, err)
	}

	// Once replaced, its events change nothing either.
	fx.begin(f)
	if out, err := ev.Settle(context.Background(), f); out != nil || err != nil {
		t.Errorf("replaced session: %+v, %v; want no change", out, err)
	}
}

func TestPaymentForAnEndedFlowIsLogged(t *testing.T) {
	fx := newFixture(t, testKey)
	f, s := fx.paidFlow("flow-a", stripefake.Payment{})
	body, sig := fx.event("checkout.session.completed", s.ID)
	ev, err := fx.webhook(body, sig)
	if err != nil {
		t.Fatal(err)
	}

	f.Status, f.State = flow.StatusCompleted, nil
	out, _ := ev.Settle(context.Background(), f)
	if out != nil || strings.Contains(fx.logs.String(), "ERROR") {
		t.Errorf("completed flow: %+v, logs %q; want no change and no alarm", out, fx.logs)
	}
	f.Status = flow.StatusExpired
	if out, _ := ev.Settle(context.Background(), f); out != nil {
		t.Errorf("expired flow: %+v; want no change", out)
	}
	logs := fx.logs.String()
	if !strings.Contains(logs, "level=ERROR") || !strings.Contains(logs, s.ID) {
		t.Errorf("logs = %q; want an error naming the session", logs)
	}
}

func TestPaymentForAReplacedSessionIsLogged(t *testing.T) {
	fx := newFixture(t, testKey)
	f, s := fx.paidFlow("flow-a", stripefake.Payment{})
	body, sig := fx.event("checkout.session.completed", s.ID)
	ev, err := fx.webhook(body, sig)
	if err != nil {
		t.Fatal(err)
	}

	f.State = []byte(`{"session":"cs_test_newer","attempt":1}`)
	if out, err := ev.Settle(context.Background(), f); out != nil || err != nil {
		t.Errorf("paid replaced session: %+v, %v; want no change", out, err)
	}
	if logs := fx.logs.String(); !strings.Contains(logs, "level=ERROR") || !strings.Contains(logs, s.ID) {
		t.Errorf("logs = %q; want an error naming the session", logs)
	}
}
