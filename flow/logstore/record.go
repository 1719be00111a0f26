package logstore

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"time"

	"github.com/bothandoff/caddy-bothandoff/flow"
	"github.com/bothandoff/caddy-bothandoff/flow/memstore"
)

// Every file of the store, log segment or snapshot, is the magic string and
// then a run of frames:
//
//	frame   = length:u32le crc:u32le payload     (crc: CRC-32C of payload)
//	payload = record*
//	record  = kind:byte keylen:uvarint key body
//	body    = set:     rev:uvarint exp:varint vlen:uvarint value
//	          delete:  nothing
//	          timer:   due:varint
//	          untimer: nothing
//	          rev:     rev:uvarint                (key empty)
//
// A segment is preallocated with zeros, and a frame's length is never 0, so
// a header of zeros ends the frames. A frame is one Apply or Claim, or one
// chunk of a snapshot, and ends with a rev record: the store's revision
// counter after it. Records are the writes' results, not their conditions,
// so replaying a frame twice ends in the same state. Times are Unix
// nanoseconds; exp 0 is no lifetime.
var magic = []byte("bot_handoff log1")

const (
	recSet byte = iota + 1
	recDelete
	recTimer
	recUntimer
	recRev
)

const (
	frameHeader = 8
	// maxFrame bounds a frame's payload, so that a damaged length cannot
	// make the reader allocate without limit.
	maxFrame = 64 << 20
	// snapshotFrame is the size at which a snapshot starts a new frame.
	snapshotFrame = 256 << 10
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// errTorn marks the end of the frames a file holds intact: a frame cut
// short or failing its checksum.
var errTorn = errors.New("torn or damaged frame")

// beginFrame appends a frame header to be filled by endFrame, and returns
// where the frame starts.
func beginFrame(buf []byte) ([]byte, int) {
	return append(buf, make([]byte, frameHeader)...), len(buf)
}

// endFrame appends the rev record and fills in the header of the frame
// starting at start.
func endFrame(buf []byte, start int, rev uint64) []byte {
	buf = appendKey(buf, recRev, "")
	buf = binary.AppendUvarint(buf, rev)
	payload := buf[start+frameHeader:]
	binary.LittleEndian.PutUint32(buf[start:], uint32(len(payload)))
	binary.LittleEndian.PutUint32(buf[start+4:], crc32.Checksum(payload, crcTable))
	return buf
}

func appendKey(buf []byte, kind byte, key string) []byte {
	buf = append(buf, kind)
	buf = binary.AppendUvarint(buf, uint64(len(key)))
	return append(buf, key...)
}

// appendSet appends the record of a value stored at key.
func appendSet(buf []byte, key string, it memstore.Item) []byte {
	buf = appendKey(buf, recSet, key)
	buf = binary.AppendUvarint(buf, it.Rev)
	buf = binary.AppendVarint(buf, unixNano(it.Exp))
	buf = binary.AppendUvarint(buf, uint64(len(it.Value)))
	return append(buf, it.Value...)
}

// appendTimer appends the record of a timer set to due.
func appendTimer(buf []byte, key string, due time.Time) []byte {
	buf = appendKey(buf, recTimer, key)
	return binary.AppendVarint(buf, due.UnixNano())
}

// appendOp appends the record of op as applied: it is what a create or
// update stored.
func appendOp(buf []byte, op flow.Op, it memstore.Item) []byte {
	switch op.Kind {
	case flow.OpCreate, flow.OpUpdate:
		return appendSet(buf, op.Key, it)
	case flow.OpDelete:
		return appendKey(buf, recDelete, op.Key)
	case flow.OpSchedule:
		return appendTimer(buf, op.Key, op.Due)
	case flow.OpUnschedule:
		return appendKey(buf, recUntimer, op.Key)
	}
	return buf
}

// A record is one decoded record; value is a copy of its own.
type record struct {
	kind  byte
	key   string
	rev   uint64
	exp   int64 // or due, for a timer
	value []byte
}

// decodeFrame calls fn for each record of a frame's payload.
func decodeFrame(p []byte, fn func(record) error) error {
	for len(p) > 0 {
		var r record
		var err error
		if r.kind, r.key, p, err = decodeKey(p); err != nil {
			return err
		}
		switch r.kind {
		case recSet:
			var n uint64
			if r.rev, p, err = uvarint(p); err == nil {
				if r.exp, p, err = varint(p); err == nil {
					n, p, err = uvarint(p)
				}
			}
			if err == nil && n > uint64(len(p)) {
				err = errors.New("value past the frame's end")
			}
			if err != nil {
				return err
			}
			r.value, p = bytes.Clone(p[:n]), p[n:]
		case recTimer:
			r.exp, p, err = varint(p)
		case recRev:
			r.rev, p, err = uvarint(p)
		case recDelete, recUntimer:
		default:
			err = fmt.Errorf("unknown record kind %d", r.kind)
		}
		if err == nil {
			err = fn(r)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func decodeKey(p []byte) (byte, string, []byte, error) {
	if len(p) == 0 {
		return 0, "", nil, errors.New("empty record")
	}
	kind := p[0]
	n, p, err := uvarint(p[1:])
	if err == nil && n > uint64(len(p)) {
		err = errors.New("key past the frame's end")
	}
	if err != nil {
		return 0, "", nil, err
	}
	return kind, string(p[:n]), p[n:], nil
}

func uvarint(p []byte) (uint64, []byte, error) {
	v, n := binary.Uvarint(p)
	if n <= 0 {
		return 0, nil, errors.New("bad number")
	}
	return v, p[n:], nil
}

func varint(p []byte) (int64, []byte, error) {
	v, n := binary.Varint(p)
	if n <= 0 {
		return 0, nil, errors.New("bad number")
	}
	return v, p[n:], nil
}

// readFrames checks r's magic and calls fn with each frame's payload, which
// fn must not keep. It returns how many bytes of r hold the magic and whole
// frames, and errTorn if what follows them is not a whole frame.
func readFrames(r io.Reader, fn func([]byte) error) (int64, error) {
	br := bufio.NewReaderSize(r, 1<<20)
	head := make([]byte, len(magic))
	if _, err := io.ReadFull(br, head); err != nil || !bytes.Equal(head, magic) {
		return 0, fmt.Errorf("not a log of this store (%w)", errTorn)
	}

	good := int64(len(magic))
	var hdr [frameHeader]byte
	var payload []byte
	for {
		if _, err := io.ReadFull(br, hdr[:]); err == io.EOF {
			return good, nil
		} else if err != nil {
			return good, tornOr(err)
		}
		n := binary.LittleEndian.Uint32(hdr[:])
		if n == 0 && binary.LittleEndian.Uint32(hdr[4:]) == 0 {
			return good, nil // the zeros after the last frame
		}
		if n > maxFrame {
			return good, errTorn
		}
		payload = grow(payload, int(n))
		if _, err := io.ReadFull(br, payload); err != nil {
			return good, tornOr(err)
		}
		if crc32.Checksum(payload, crcTable) != binary.LittleEndian.Uint32(hdr[4:]) {
			return good, errTorn
		}
		if err := fn(payload); err != nil {
			return good, err
		}
		good += frameHeader + int64(n)
	}
}

// tornOr names a file ending inside a frame as torn; other errors stay.
func tornOr(err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return errTorn
	}
	return err
}

func grow(b []byte, n int) []byte {
	if cap(b) < n {
		return make([]byte, n)
	}
	return b[:n]
}

// unixNano is t in Unix nanoseconds, 0 for the zero time.
func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// fromUnixNano is the inverse of unixNano.
func fromUnixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// writeCopy writes c as a snapshot, the magic and frames, to w.
func writeCopy(w io.Writer, c memstore.Copy) (int64, error) {
	cw := &countingWriter{w: w}
	if _, err := cw.Write(magic); err != nil {
		return cw.n, err
	}

	buf, start := beginFrame(nil)
	flush := func(force bool) error {
		if !force && len(buf)-start < snapshotFrame {
			return nil
		}
		buf = endFrame(buf, start, c.Rev)
		if _, err := cw.Write(buf); err != nil {
			return err
		}
		buf, start = beginFrame(buf[:0])
		return nil
	}
	for _, k := range c.Items {
		buf = appendSet(buf, k.Key, k.Item)
		if err := flush(false); err != nil {
			return cw.n, err
		}
	}
	for _, t := range c.Timers {
		buf = appendTimer(buf, t.Key, t.Due)
		if err := flush(false); err != nil {
			return cw.n, err
		}
	}
	err := flush(true)
	return cw.n, err
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
