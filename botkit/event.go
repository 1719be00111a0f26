package botkit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/bothandoff/caddy-bothandoff/flow"
)

// Event is what every signal delivers: the webhook posts it as its body,
// and the bot_state signal stores it under a property of the bot's state.
type Event = flow.Event

// DefaultStateProperty is the key of the bot's state data under which the
// bot_state signal writes the newest event, unless configured otherwise.
const DefaultStateProperty = "handoff"

// ErrNotEvent means a JSON value is not a handoff event.
var ErrNotEvent = errors.New("botkit: not a handoff event")

// ParseEvent decodes an event and checks that it has a known type, a flow
// ID and a conversation reference.
func ParseEvent(b []byte) (*Event, error) {
	var ev Event
	if err := json.Unmarshal(b, &ev); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotEvent, err)
	}
	switch ev.Type {
	case flow.EventCompleted, flow.EventFailed, flow.EventExpired:
	default:
		return nil, fmt.Errorf("%w: type %q", ErrNotEvent, ev.Type)
	}
	if ev.FlowID == "" || ev.Ref.Key().Validate() != nil {
		return nil, fmt.Errorf("%w: flowId and ref are required", ErrNotEvent)
	}
	return &ev, nil
}

// ParseState returns the event the bot_state signal wrote into a state
// record, or nil and no error when the record holds none. record is the
// record's data object, as the bot's storage keeps it, or the State REST
// API's answer, {"data": {...}, "eTag": "..."}. property is the signal's
// property; "" means DefaultStateProperty.
//
// With the signal's "data user" or "data conversation" the record is
// shared, so check that the event's Ref.Key() is the one the bot serves.
func ParseState(record []byte, property string) (*Event, error) {
	if property == "" {
		property = DefaultStateProperty
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(record, &obj); err != nil {
		return nil, fmt.Errorf("decoding state record: %w", err)
	}
	raw, ok := obj[property]
	if !ok {
		data, isAPI := obj["data"]
		if !isAPI || !bytes.HasPrefix(bytes.TrimSpace(data), []byte("{")) {
			return nil, nil
		}
		if err := json.Unmarshal(data, &obj); err != nil {
			return nil, fmt.Errorf("decoding state data: %w", err)
		}
		raw = obj[property]
	}
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	return ParseEvent(raw)
}
