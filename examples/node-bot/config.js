'use strict';
// The bot's configuration, from environment variables. Only HANDOFF_URL and
// HANDOFF_LINK_SECRET are required; see README.md for the rest.

const crypto = require('node:crypto');

// flowName reads a flow name: unset means the default, empty turns the
// command off.
function flowName(value, fallback) {
  return value === undefined ? fallback : value.trim();
}

// commands are what the user can ask for; each starts a flow of the
// handler, configured in its Caddyfile under the same name.
function commands(env) {
  const list = [
    {
      name: 'signin',
      words: ['sign in', 'signin', 'log in', 'login'],
      kind: 'oauth',
      flow: flowName(env.HANDOFF_SIGNIN_FLOW, 'signin'),
      data: () => undefined,
    },
    {
      name: 'order',
      words: ['order'],
      kind: 'site',
      flow: flowName(env.HANDOFF_ORDER_FLOW, 'checkout'),
      // Free keys: the site gets them in the Handoff-Data header.
      data: () => ({
        orderId: newOrderId(),
        item: env.HANDOFF_ORDER_ITEM || 'Green tea',
        quantity: 1,
      }),
    },
    {
      name: 'pay',
      words: ['pay'],
      kind: 'payment',
      flow: flowName(env.HANDOFF_PAY_FLOW, 'pay'),
      // A payment flow takes the amount in minor units, and the currency.
      data: () => ({
        amount: Number(env.HANDOFF_PAY_AMOUNT || 500),
        currency: env.HANDOFF_PAY_CURRENCY || 'eur',
        description: env.HANDOFF_PAY_DESCRIPTION || 'Green tea',
        orderId: newOrderId(),
      }),
    },
  ];
  return list.filter((c) => c.flow);
}

function newOrderId() {
  return `o-${crypto.randomBytes(4).toString('hex')}`;
}

function loadConfig(env) {
  const missing = ['HANDOFF_URL', 'HANDOFF_LINK_SECRET'].filter((k) => !env[k]);
  if (missing.length > 0) {
    throw new Error(`set ${missing.join(' and ')}; see README.md`);
  }
  return {
    handoff: {
      url: env.HANDOFF_URL,
      secret: env.HANDOFF_LINK_SECRET,
      audience: env.HANDOFF_AUDIENCE,
      issuer: env.HANDOFF_ISSUER,
    },
    webhookSecret: env.HANDOFF_WEBHOOK_SECRET,
    linkSeconds: Number(env.HANDOFF_LINK_TTL || 600),
    commands: commands(env),
    port: Number(env.PORT || 3978),
  };
}

module.exports = { loadConfig };
