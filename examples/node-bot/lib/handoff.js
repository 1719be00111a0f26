'use strict';
// The bot's side of caddy-bothandoff: it signs links that send a user to
// the browser, and calls the handler's bot API (verify, status, cancel).
// Both kinds of token are HS256 JWTs signed with the link secret; the
// header's typ tells them apart, so one can never be used as the other.

const crypto = require('node:crypto');
const jwt = require('jsonwebtoken');

const LINK_TYPE = 'handoff-link+jwt';
const API_TYPE = 'handoff-api+jwt';

// The handler refuses secrets shorter than this, in bytes.
const MIN_SECRET_BYTES = 32;

// An API token lives one minute; the handler accepts at most five.
const API_TOKEN_SECONDS = 60;

// How long a call to the handler may take.
const TIMEOUT_MS = 10000;

// HandoffError is an error answer of the bot API. code is its error code:
// invalid_code, locked, expired, no_flow, not_completed, already_finished,
// bad_request, unauthorized, rate_limited, unavailable; or http_error when
// the answer was not the API's JSON (a proxy's error page, say).
class HandoffError extends Error {
  constructor(status, code, message, attemptsLeft, retryAfter) {
    super(`handoff API: ${status} ${code}: ${message}`);
    this.name = 'HandoffError';
    this.status = status;
    this.code = code;
    this.attemptsLeft = attemptsLeft; // with invalid_code
    this.retryAfter = retryAfter; // seconds, with rate_limited and unavailable
  }
}

class HandoffClient {
  /**
   * @param {object} options
   * @param {string} options.url the handler's URL with its prefix, like
   *   https://example.com/handoff; also the token audience by default
   * @param {string} options.secret the link secret shared with the handler
   * @param {string} [options.audience] the audience, if the handler is
   *   configured with one other than its URL
   * @param {string} [options.issuer] the bot's ID, if the handler checks iss
   * @param {() => number} [options.now] the clock, in ms; tests move it
   */
  constructor({ url, secret, audience, issuer, now = Date.now }) {
    if (!url) throw new Error('the handler URL is required');
    if (!secret || Buffer.byteLength(secret) < MIN_SECRET_BYTES) {
      throw new Error(`the link secret must be at least ${MIN_SECRET_BYTES} bytes`);
    }
    this.url = url.replace(/\/+$/, '');
    this.audience = audience || this.url;
    this.issuer = issuer;
    this.secret = Buffer.from(secret, 'utf8');
    this.now = now;
  }

  // sign returns a JWT of type typ with claims, living seconds from now.
  sign(typ, claims, seconds) {
    const options = {
      algorithm: 'HS256',
      header: { typ },
      audience: this.audience,
      expiresIn: seconds,
      jwtid: crypto.randomUUID(),
    };
    if (this.issuer) options.issuer = this.issuer;
    const iat = Math.floor(this.now() / 1000);
    return jwt.sign({ ...claims, iat }, this.secret, options);
  }

  /**
   * link returns the URL of a signed link that starts flow for the
   * conversation and user of ref.
   * @param {string} flow a flow configured in the handler
   * @param {object} ref from refOf(activity)
   * @param {object} [data] flow parameters: payment amount and currency,
   *   oauth scopes or loginHint, free keys for a site flow
   * @param {number} [seconds] lifetime, at most the handler's max_link_ttl
   */
  link(flow, ref, data, seconds = 600) {
    const claims = { flow, ref };
    if (data) claims.data = data;
    const token = this.sign(LINK_TYPE, claims, seconds);
    return `${this.url}/start?t=${encodeURIComponent(token)}`;
  }

  // verify checks the text the user pasted (the handler keeps its digits)
  // and resolves to {status: 'verified', flowId, flow, result}.
  verify(key, code) {
    return this.call('POST', '/api/verify', { ...key, code });
  }

  // status resolves to {status, flow, flowId, kind, error, updatedAt,
  // expiresAt}; a link not opened yet has no flow (HandoffError no_flow).
  status(key) {
    const query = new URLSearchParams(key).toString();
    return this.call('GET', `/api/status?${query}`);
  }

  // cancel ends the conversation's open flow.
  cancel(key) {
    return this.call('POST', '/api/cancel', key);
  }

  async call(method, path, body) {
    const token = this.sign(API_TYPE, {}, API_TOKEN_SECONDS);
    const headers = { Authorization: `Bearer ${token}` };
    if (body) headers['Content-Type'] = 'application/json';
    const resp = await fetch(this.url + path, {
      method,
      headers,
      body: body && JSON.stringify(body),
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
    const text = await resp.text();
    let answer;
    try {
      answer = JSON.parse(text);
    } catch {
      answer = undefined;
    }
    if (resp.ok && answer) return answer;
    if (!answer || !answer.error) {
      // Not the API's answer; its body is not passed on.
      throw new HandoffError(resp.status, 'http_error', resp.statusText || 'no JSON answer');
    }
    const retryAfter = Number(resp.headers.get('Retry-After')) || undefined;
    throw new HandoffError(resp.status, answer.error, answer.message, answer.attemptsLeft,
      retryAfter);
  }
}

// refOf returns the part of a Bot Framework conversation reference a link
// carries: who the flow is for, and where the bot can reach them. The
// handler gives it back in its events, so the bot can answer proactively.
function refOf(activity) {
  const conversation = { id: activity.conversation.id };
  if (activity.conversation.isGroup) conversation.isGroup = true;
  const user = { id: activity.from.id };
  if (activity.from.name) user.name = activity.from.name;
  return {
    channelId: activity.channelId,
    serviceUrl: activity.serviceUrl,
    conversation,
    user,
    bot: { id: activity.recipient.id },
  };
}

// keyOf returns the channel, conversation and user the bot API names.
function keyOf(activity) {
  return {
    channelId: activity.channelId,
    conversationId: activity.conversation.id,
    userId: activity.from.id,
  };
}

module.exports = { HandoffClient, HandoffError, refOf, keyOf, LINK_TYPE, API_TYPE };
