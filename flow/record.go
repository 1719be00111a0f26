package flow

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Status is where a flow is in its life.
type Status string

// The statuses of a flow. Pending and completed flows are open; the others
// are final.
const (
	StatusPending    Status = "pending"
	StatusCompleted  Status = "completed"
	StatusVerified   Status = "verified"
	StatusFailed     Status = "failed"
	StatusExpired    Status = "expired"
	StatusCancelled  Status = "cancelled"
	StatusSuperseded Status = "superseded"
)

// Final reports whether no further transition can happen.
func (s Status) Final() bool { return s != StatusPending && s != StatusCompleted }

// A Record is the stored state of a flow. One record exists per audience,
// channel, conversation and user: a newer link replaces an older flow.
// Secrets in it (the provider's state, the result, the number to show) are
// sealed; the number to verify is kept only as a MAC.
type Record struct {
	ID string `json:"id"`
	// Conv is the store key of the audience, channel, conversation and user.
	Conv   string          `json:"conv"`
	Flow   string          `json:"flow"`
	Kind   string          `json:"kind"`
	Status Status          `json:"status"`
	Ref    Ref             `json:"ref"`
	Data   json.RawMessage `json:"data,omitempty"`

	// LinkIssued is the link's iat: a flow from an older link never
	// replaces one from a newer link.
	LinkIssued time.Time `json:"linkIssued"`
	// Browser is the MAC of the cookie that binds the flow to a browser.
	Browser []byte `json:"browser"`

	Created  time.Time `json:"created"`
	Updated  time.Time `json:"updated"`
	Deadline time.Time `json:"deadline"`

	// Waiting is set while the provider awaits an outcome it cannot show yet,
	// such as a payment still being processed.
	Waiting bool `json:"waiting,omitempty"`
	// State is the provider's sealed state (PKCE verifier, session ID).
	State []byte `json:"state,omitempty"`

	// NoNumber is set when the flow's channel is trusted to bind its web
	// view to the user: the bot verifies with an empty number.
	NoNumber bool   `json:"noNumber,omitempty"`
	CodeMAC  []byte `json:"codeMac,omitempty"`
	// Digits is the length of the number, as it was made.
	Digits      int       `json:"digits,omitempty"`
	CodeExpires time.Time `json:"codeExpires,omitzero"`
	Attempts    int       `json:"attempts,omitempty"`
	// Display is the sealed magic number, kept until the browser shows it.
	Display []byte `json:"display,omitempty"`
	// Result is the sealed result, released once by the verify API.
	Result []byte `json:"result,omitempty"`
	// Error is the failure reason for a failed flow, as a short code.
	Error string `json:"error,omitempty"`

	// rev is the store revision the record was read at.
	rev uint64
	// begun is the answer of the provider asked before the record was
	// stored; it is never stored.
	begun *begun
}

// Handle returns the record's handle.
func (r *Record) Handle() Handle { return Handle{Conv: r.Conv, ID: r.ID} }

// Handle names a record and one flow in it: the store key of the
// conversation and the flow ID. It travels in cookies, OAuth state and
// payment references; it is not secret, since every use also needs the
// browser's cookie or a signed webhook.
type Handle struct {
	Conv string
	ID   string
}

// String encodes the handle as "conv.id".
func (h Handle) String() string { return h.Conv + "." + h.ID }

// ParseHandle decodes a handle made by Handle.String.
func ParseHandle(s string) (Handle, error) {
	conv, id, ok := strings.Cut(s, ".")
	if !ok || !isID(conv, convIDLen) || !isID(id, flowIDLen) {
		return Handle{}, fmt.Errorf("%w: malformed flow handle", ErrBadRequest)
	}
	return Handle{Conv: conv, ID: id}, nil
}

// Lengths of the encoded IDs, from 18 and 16 random or MAC bytes.
const (
	convIDLen = 24
	flowIDLen = 22
)

func isID(s string, n int) bool {
	if len(s) != n {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(s)
	return err == nil
}

// Store keys, by prefix.
const (
	keyFlow     = "f/"
	keyLink     = "j/"
	keyDelivery = "d/"
	keyWebhook  = "w/"
)

func flowKey(conv string) string { return keyFlow + conv }

func (r *Record) marshal() ([]byte, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encoding flow record: %w", err)
	}
	return b, nil
}

func unmarshalRecord(b []byte) (*Record, error) {
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("decoding flow record: %w", err)
	}
	return &r, nil
}
