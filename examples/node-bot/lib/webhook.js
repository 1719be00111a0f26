'use strict';
// The bot's endpoint for the handler's webhook signal. Each request is an
// event (handoff.completed, handoff.failed, handoff.expired), signed with
// the webhook secret in the Handoff-Signature header.

const crypto = require('node:crypto');

// How far a signature's timestamp may be from now, in seconds.
const TOLERANCE_SECONDS = 300;

// Events are small; the result a "deliver full" event carries is a few KB.
const MAX_BODY_BYTES = 1024 * 1024;

// signed reports whether body, the raw bytes of a request, carries a valid
// Handoff-Signature header: "t=UNIX,v1=HEX", HEX being the HMAC-SHA256 of
// UNIX + "." + body under the secret. Several v1 values may be given while
// the secret is rotated.
function signed(secret, header, body, nowSeconds = Date.now() / 1000) {
  const fields = String(header || '').split(',').map((part) => part.trim().split('='));
  const t = fields.find(([k]) => k === 't');
  if (!t || !/^\d+$/.test(t[1]) || Math.abs(nowSeconds - Number(t[1])) > TOLERANCE_SECONDS) {
    return false;
  }
  const want = crypto.createHmac('sha256', secret).update(`${t[1]}.`).update(body).digest();
  return fields.some(([k, v]) => {
    if (k !== 'v1') return false;
    const got = Buffer.from(v || '', 'hex');
    return got.length === want.length && crypto.timingSafeEqual(got, want);
  });
}

async function readBody(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new Error('body too large');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/**
 * webhookHandler returns a Node request handler that checks each event's
 * signature and passes it to onEvent. A failing onEvent answers 503, so the
 * handler delivers the event again later; delivery is at least once, and
 * the event's id stays the same.
 * @param {object} options
 * @param {string} options.secret the webhook secret of the Caddyfile
 * @param {(event: object) => Promise<void>} options.onEvent
 * @param {() => number} [options.now] the clock, in ms
 */
function webhookHandler({ secret, onEvent, now = Date.now }) {
  if (!secret || Buffer.byteLength(secret) < 32) {
    throw new Error('the webhook secret must be at least 32 bytes');
  }
  return async (req, res) => {
    let event;
    try {
      const body = await readBody(req);
      if (!signed(secret, req.headers['handoff-signature'], body, now() / 1000)) {
        res.writeHead(401).end();
        return;
      }
      event = JSON.parse(body.toString('utf8'));
    } catch {
      res.writeHead(400).end();
      return;
    }
    try {
      await onEvent(event);
    } catch (err) {
      console.error('handoff event not handled:', err.message);
      res.writeHead(503).end();
      return;
    }
    res.writeHead(204).end();
  };
}

// referenceOf returns the conversation reference of an event, for
// continuing the conversation proactively.
function referenceOf(event) {
  const { ref } = event;
  return {
    channelId: ref.channelId,
    serviceUrl: ref.serviceUrl,
    conversation: ref.conversation,
    user: ref.user,
    bot: ref.bot,
  };
}

module.exports = { signed, webhookHandler, referenceOf };
