'use strict';
// Runs HandoffBot in botbuilder's TestAdapter for the end-to-end test of
// the project (tests/nodebot_test.go), which plays the users: it types
// their messages here and does their part in the browser against a real
// Caddy. The bot is configured as in index.js, from the environment.
//
// The first line on stdout is {"ready": {"webhook": URL}}: where the bot
// takes the handler's events, as index.js does on /api/handoff (the URL is
// empty without HANDOFF_WEBHOOK_SECRET). Then one JSON command a line on
// stdin, one JSON answer a line on stdout:
//
//   {"say": "sign in", "from": {"id": "29:alice", "name": "Alice"},
//    "conversation": {"id": "19:chat", "isGroup": true}}
//     -> {"replies": [{"text": "...", "title": "Sign in", "link": "https://..."}]}
//     where title and link are the card's and its OpenUrl button's; with
//     "mention": true the message @-mentions the bot first, as in Teams
//   {"proactive": true}
//     -> {"replies": [...]}: what the bot said on its own, after events,
//     since the last such command; "to" names the user
//   {"advance": 360}
//     moves the bot's clock forward by so many seconds, as the test moves
//     the handler's clock -> {"offset": 360}
//
// A command that fails answers {"error": "..."}. Logs go to stderr.

const http = require('node:http');
const readline = require('node:readline');
const {
  MemoryStorage, PrivateConversationState, TestAdapter, TurnContext,
} = require('botbuilder');
const { loadConfig } = require('../config');
const { HandoffBot } = require('../bot');
const { HandoffClient } = require('../lib/handoff');
const { referenceOf, webhookHandler } = require('../lib/webhook');

let offsetMs = 0;
const now = () => Date.now() + offsetMs;
const config = loadConfig(process.env);
const bot = new HandoffBot({
  handoff: new HandoffClient({ ...config.handoff, now }),
  state: new PrivateConversationState(new MemoryStorage()),
  commands: config.commands,
  linkSeconds: config.linkSeconds,
  log: { error: (...args) => console.error(...args) },
});
const adapter = new TestAdapter((context) => bot.run(context));
// Proactive turns get their own adapter, so that their replies never mix
// with the replies to a message.
const proactiveAdapter = new TestAdapter((context) => bot.run(context));
const proactive = [];

// The bot's name in mentions; digits in it must not reach the number.
const MENTIONED_NAME = 'Shop Bot 24';

// summarize keeps what the test checks of a reply.
function summarize(activity) {
  const reply = { text: activity.text || '' };
  const card = activity.attachments && activity.attachments[0] && activity.attachments[0].content;
  if (card) {
    reply.title = card.title;
    const button = (card.buttons || []).find((b) => b.type === 'openUrl');
    if (button) reply.link = button.value;
  }
  return reply;
}

// onEvent continues the event's conversation, as CloudAdapter's
// continueConversationAsync does in index.js.
async function onEvent(event) {
  const activity = TurnContext.applyConversationReference(
    { type: 'event', name: 'ContinueConversation' }, referenceOf(event), true);
  await proactiveAdapter.processActivity(activity, (context) => bot.onHandoffEvent(context, event));
  for (let a = proactiveAdapter.getNextReply(); a; a = proactiveAdapter.getNextReply()) {
    proactive.push({ to: a.recipient && a.recipient.id, ...summarize(a) });
  }
}

async function say(command) {
  const activity = {
    type: 'message',
    text: command.say,
    from: command.from,
    conversation: command.conversation,
  };
  if (command.mention) {
    // Teams writes a mention as markup in the text, named in an entity.
    const markup = `<at>${MENTIONED_NAME}</at>`;
    activity.text = `${markup} ${command.say}`;
    activity.entities = [{ type: 'mention', text: markup, mentioned: adapter.conversation.bot }];
  }
  await adapter.processActivity(activity);
  const replies = [];
  for (let a = adapter.getNextReply(); a; a = adapter.getNextReply()) {
    replies.push(summarize(a));
  }
  return { replies };
}

async function run(command) {
  if (command.advance !== undefined) {
    offsetMs += command.advance * 1000;
    return { offset: offsetMs / 1000 };
  }
  if (command.proactive) return { replies: proactive.splice(0) };
  return say(command);
}

// listen serves the webhook endpoint on a free loopback port, and resolves
// to its URL.
function listen() {
  if (!config.webhookSecret) return Promise.resolve('');
  const handle = webhookHandler({ secret: config.webhookSecret, onEvent, now });
  const server = http.createServer(handle);
  server.unref();
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${server.address().port}/`));
  });
}

async function main() {
  const webhook = await listen();
  process.stdout.write(`${JSON.stringify({ ready: { webhook } })}\n`);
  const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  for await (const line of lines) {
    if (!line.trim()) continue;
    let answer;
    try {
      answer = await run(JSON.parse(line));
    } catch (err) {
      answer = { error: String((err && err.stack) || err) };
    }
    process.stdout.write(`${JSON.stringify(answer)}\n`);
  }
}

main();
