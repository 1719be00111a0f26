'use strict';
// HandoffBot sends its user to the browser for what cannot happen in the
// chat (signing in, paying, confirming an order on the shop's site), waits,
// and takes the number the browser shows as proof that the person who
// finished there is the person in this chat.

const {
  ActionTypes, ActivityHandler, CardFactory, MessageFactory, TurnContext,
} = require('botbuilder');
const { HandoffError, keyOf, refOf } = require('./lib/handoff');

const WAITING = "I'm still waiting for you to finish in the browser; " +
  'paste the number when you have it.';
const NOT_OPENED = "I'm still waiting for you to open the link and finish in the browser; " +
  'paste the number when you have it.';

class HandoffBot extends ActivityHandler {
  /**
   * @param {object} options
   * @param {import('./lib/handoff').HandoffClient} options.handoff
   * @param {import('botbuilder').BotState} options.state where the bot keeps
   *   what it waits for: PrivateConversationState, so each user of a group
   *   chat has their own
   * @param {object[]} options.commands from config.js
   * @param {number} [options.linkSeconds] how long a link lives
   * @param {Console} [options.log]
   */
  constructor({ handoff, state, commands, linkSeconds = 600, log = console }) {
    super();
    this.handoff = handoff;
    this.state = state;
    this.commands = commands;
    this.linkSeconds = linkSeconds;
    this.log = log;
    // {command, data, linkSent, linkExpires, event}: the handoff this user
    // was sent on, and the last event heard of it.
    this.pending = state.createProperty('pendingHandoff');

    this.onMessage(async (context, next) => {
      await this.answer(context);
      await this.state.saveChanges(context);
      await next();
    });
    this.onMembersAdded(async (context, next) => {
      const bot = context.activity.recipient.id;
      if (context.activity.membersAdded.some((m) => m.id !== bot)) {
        await context.sendActivity(`Hi! ${this.help()}`);
      }
      await next();
    });
  }

  // answer decides what the user's message asks for.
  async answer(context) {
    const text = TurnContext.removeRecipientMention(context.activity) ||
      context.activity.text || '';
    const said = normalize(text);
    const pending = await this.pending.get(context);
    const command = this.commands.find((c) => c.words.some((w) => said === w ||
      said.startsWith(`${w} `)));

    if (command) return this.sendLink(context, command);
    if (said === 'cancel') return this.cancel(context, pending);
    if (!pending) {
      return this.say(context, /\d/.test(said)
        ? `I'm not waiting for a number from you. ${this.help()}` : this.help());
    }
    const waitingFor = this.commands.find((c) => c.name === pending.command);
    if (!waitingFor) {
      // Configured away since; forget it.
      await this.pending.delete(context);
      return this.say(context, this.help());
    }
    if (/\d/.test(said)) return this.verify(context, waitingFor, pending, text);
    return this.checkStatus(context, waitingFor, pending);
  }

  help() {
    const words = this.commands.map((c) => `"${c.words[0]}"`);
    return `Say ${words.join(', ')}, or "cancel".`;
  }

  // sendLink signs a link for command and sends it in a card. A newer link
  // replaces any flow this user still had open in this conversation.
  async sendLink(context, command, intro) {
    const activity = context.activity;
    const data = command.data();
    const link = this.handoff.link(command.flow, refOf(activity), data, this.linkSeconds);
    const now = this.handoff.now();
    await this.pending.set(context, {
      command: command.name,
      data,
      linkSent: now,
      linkExpires: now + this.linkSeconds * 1000,
    });

    const { title, text, button } = cardText(command.kind, data);
    const card = CardFactory.heroCard(title, text, undefined,
      CardFactory.actions([{ type: ActionTypes.OpenUrl, title: button, value: link }]));
    let line = intro;
    if (activity.conversation.isGroup) {
      // Everyone in a group sees the card; say whose it is.
      line = `${intro || ''} This link is for ${activity.from.name || 'you'} only.`.trim();
    }
    await context.sendActivity(MessageFactory.attachment(card, line));
  }

  // verify checks the number the user pasted against their flow.
  async verify(context, command, pending, text) {
    let res;
    try {
      res = await this.handoff.verify(keyOf(context.activity), text);
    } catch (err) {
      return this.verifyFailed(context, command, pending, err);
    }
    await this.pending.delete(context);
    // A real bot would keep what it needs of res.result here, such as the
    // access token of a sign-in, in a store for secrets.
    return this.say(context, doneText(command.kind, res.result || {}, pending.data));
  }

  async verifyFailed(context, command, pending, err) {
    switch (err instanceof HandoffError && err.code) {
      case 'invalid_code': {
        const n = err.attemptsLeft;
        return this.say(context, `That number is not right. You have ${n} ` +
          `${n === 1 ? 'try' : 'tries'} left.`);
      }
      case 'locked':
        await this.pending.delete(context);
        return this.say(context, 'That was too many wrong numbers, so I closed this ' +
          `request. Say "${command.words[0]}" to start again.`);
      case 'expired':
        return this.sendLink(context, command, 'That request expired. Here is a new link.');
      case 'not_completed':
        return this.say(context, WAITING);
      case 'no_flow':
        return this.notOpened(context, command, pending);
      case 'already_finished':
        await this.pending.delete(context);
        return this.say(context, 'That request is already finished.');
      default:
        return this.trouble(context, err);
    }
  }

  // checkStatus answers a user who talks while the bot waits.
  async checkStatus(context, command, pending) {
    let st;
    try {
      st = await this.handoff.status(keyOf(context.activity));
    } catch (err) {
      if (err instanceof HandoffError && err.code === 'no_flow') {
        return this.notOpened(context, command, pending);
      }
      return this.trouble(context, err);
    }
    switch (st.status) {
      case 'pending':
        return this.say(context, WAITING);
      case 'completed':
        return this.say(context, 'You are done in the browser. Paste the number it shows here.');
      case 'expired':
        return this.sendLink(context, command,
          'That request expired before it was finished. Here is a new link.');
      case 'failed':
        await this.pending.delete(context);
        return this.say(context, `${failedText(st.error)} Say "${command.words[0]}" to try again.`);
      default: // verified, cancelled, superseded
        await this.pending.delete(context);
        return this.say(context, `That request is no longer open. Say "${command.words[0]}" ` +
          'to start again.');
    }
  }

  // onHandoffEvent tells the user what the handler's webhook said of their
  // request, in a proactive turn: context continues the conversation of the
  // event's ref. It ignores events of an older request, and repeats.
  async onHandoffEvent(context, event) {
    const pending = await this.pending.get(context);
    const command = pending && this.commands.find((c) => c.name === pending.command);
    if (!command || event.flow !== command.flow || pending.event === event.id ||
      Date.parse(event.createdAt) < pending.linkSent) {
      return;
    }
    await this.pending.set(context, { ...pending, event: event.id });
    const again = `Say "${command.words[0]}"`;
    switch (event.type) {
      case 'handoff.completed':
        await this.say(context, 'You are done in the browser. Paste the number it shows here.');
        break;
      case 'handoff.failed':
        await this.pending.delete(context);
        await this.say(context, `${failedText(event.error)} ${again} to try again.`);
        break;
      case 'handoff.expired':
        await this.pending.delete(context);
        await this.say(context, `Your request expired before it was finished. ${again} ` +
          'for a new link.');
        break;
      default:
    }
    await this.state.saveChanges(context);
  }

  // notOpened answers for a link that started no flow yet: the flow begins
  // when the user presses Continue in the browser.
  async notOpened(context, command, pending) {
    if (this.handoff.now() < pending.linkExpires) return this.say(context, NOT_OPENED);
    return this.sendLink(context, command,
      'The link expired before it was opened. Here is a new one.');
  }

  async cancel(context, pending) {
    if (!pending) return this.say(context, 'There is nothing to cancel.');
    try {
      await this.handoff.cancel(keyOf(context.activity));
    } catch (err) {
      // A link never opened has no flow; a finished one needs no cancel.
      if (!(err instanceof HandoffError && ['no_flow', 'already_finished'].includes(err.code))) {
        return this.trouble(context, err);
      }
    }
    await this.pending.delete(context);
    return this.say(context, 'Cancelled.');
  }

  async trouble(context, err) {
    this.log.error('handoff API:', err.message);
    const busy = err instanceof HandoffError &&
      ['rate_limited', 'unavailable'].includes(err.code);
    return this.say(context, busy
      ? "I can't check that right now; please try again in a minute."
      : 'Something went wrong on my side; please try again later.');
  }

  // say answers, naming the user in a group chat.
  say(context, text) {
    const a = context.activity;
    const who = a.conversation.isGroup && a.from.name ? `${a.from.name}: ` : '';
    return context.sendActivity(who + text);
  }
}

// normalize lower-cases a message and drops extra spaces and a closing
// punctuation mark, so that "Sign in!" is "sign in".
function normalize(text) {
  return text.toLowerCase().replace(/\s+/g, ' ').trim().replace(/[.!?]+$/, '');
}

function money(data) {
  return `${(data.amount / 100).toFixed(2)} ${String(data.currency).toUpperCase()}`;
}

// cardText is what the card says for a flow of kind.
function cardText(kind, data) {
  switch (kind) {
    case 'oauth':
      return {
        title: 'Sign in',
        text: 'Sign in in your browser. You will get a number: paste it here, ' +
          'so I know it was you.',
        button: 'Sign in',
      };
    case 'payment':
      return {
        title: `Pay ${money(data)}`,
        text: `${data.description}. Pay on the secure checkout, then paste the number ` +
          'you get here.',
        button: 'Pay',
      };
    default:
      return {
        title: 'Confirm your order',
        text: `${data.quantity} × ${data.item}. Confirm it on our site, then paste the number ` +
          'you get here.',
        button: 'Open checkout',
      };
  }
}

// doneText is what the bot says once the number checked out.
function doneText(kind, result, data) {
  switch (kind) {
    case 'oauth': {
      const name = displayName(result);
      return name ? `Hello, ${name}! You are signed in.` : 'You are signed in.';
    }
    case 'payment':
      return `Thanks! Your payment of ${money(data)} is confirmed.`;
    default:
      return `Thanks! Your order ${result.orderId || data.orderId} is confirmed.`;
  }
}

// displayName finds the user's name in a sign-in result: the ID token's
// claims (OpenID Connect), or the provider's user object (GitHub).
function displayName(result) {
  const claims = result.claims || {};
  const user = result.user || {};
  const given = [claims.given_name, claims.family_name].filter(Boolean).join(' ');
  return claims.name || given || user.name || user.login || claims.preferred_username ||
    claims.email;
}

// failedText explains a flow's failure code.
function failedText(error) {
  switch (error) {
    case 'access_denied':
      return 'You cancelled the sign-in.';
    case 'too_many_attempts':
      return 'That was too many wrong numbers, so I closed this request.';
    default:
      return `That did not work out in the browser (${error || 'failed'}).`;
  }
}

module.exports = { HandoffBot, displayName };
