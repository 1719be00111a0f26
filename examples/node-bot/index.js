'use strict';
// Runs the bot on http://localhost:3978/api/messages, for the Bot Framework
// Emulator or, behind a public HTTPS address, for Azure Bot Service. With
// HANDOFF_WEBHOOK_SECRET set, it also takes the handler's events on
// /api/handoff and tells the user about them proactively.

const http = require('node:http');
const {
  CloudAdapter, ConfigurationBotFrameworkAuthentication, MemoryStorage,
  PrivateConversationState,
} = require('botbuilder');
const { loadConfig } = require('./config');
const { HandoffBot } = require('./bot');
const { HandoffClient } = require('./lib/handoff');
const { referenceOf, webhookHandler } = require('./lib/webhook');

// Activities from the channel are small; refuse anything larger.
const MAX_BODY_BYTES = 256 * 1024;

const config = loadConfig(process.env);

// MicrosoftAppId, MicrosoftAppPassword, MicrosoftAppType and
// MicrosoftAppTenantId come from the environment; all empty for the
// Emulator.
const adapter = new CloudAdapter(new ConfigurationBotFrameworkAuthentication(process.env));
adapter.onTurnError = async (context, err) => {
  console.error('turn failed:', err);
  await context.sendActivity('Sorry, something went wrong.');
};

// MemoryStorage forgets everything on restart; a real bot keeps its state
// in Blob or Cosmos DB storage.
const state = new PrivateConversationState(new MemoryStorage());
const bot = new HandoffBot({
  handoff: new HandoffClient(config.handoff),
  state,
  commands: config.commands,
  linkSeconds: config.linkSeconds,
});

// readJSON reads a request body of at most MAX_BODY_BYTES as JSON.
async function readJSON(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new Error('body too large');
    chunks.push(chunk);
  }
  return JSON.parse(Buffer.concat(chunks).toString('utf8'));
}

// botResponse gives a Node response the few methods the adapter calls,
// which express and restify have built in.
function botResponse(res) {
  return {
    socket: res.socket,
    header: (name, value) => res.setHeader(name, value),
    status: (code) => {
      res.statusCode = code;
    },
    send: (body) => {
      if (typeof body === 'object') {
        res.setHeader('Content-Type', 'application/json');
        res.write(JSON.stringify(body));
      } else {
        res.write(String(body));
      }
    },
    end: () => res.end(),
  };
}

// onHandoffEvent continues the event's conversation, as the bot's own
// identity, to tell the user.
const onHandoffEvent = config.webhookSecret && webhookHandler({
  secret: config.webhookSecret,
  onEvent: (event) => adapter.continueConversationAsync(process.env.MicrosoftAppId || '',
    referenceOf(event), (context) => bot.onHandoffEvent(context, event)),
});

const server = http.createServer(async (req, res) => {
  if (onHandoffEvent && req.url === '/api/handoff' && req.method === 'POST') {
    await onHandoffEvent(req, res);
    return;
  }
  if (req.url !== '/api/messages' || req.method !== 'POST') {
    res.writeHead(404).end();
    return;
  }
  try {
    req.body = await readJSON(req);
  } catch {
    res.writeHead(400).end();
    return;
  }
  await adapter.process(req, botResponse(res), (context) => bot.run(context));
});

server.listen(config.port, () => {
  console.log(`bot listening on http://localhost:${config.port}/api/messages`);
  console.log(`handing off to ${config.handoff.url}; flows: ` +
    config.commands.map((c) => `${c.words[0]} -> ${c.flow}`).join(', '));
  if (onHandoffEvent) console.log('taking handoff events on /api/handoff');
});
