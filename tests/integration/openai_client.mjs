// SPDX-License-Identifier: Apache-2.0
// The `openai` npm package (the official client) against a running ortserve
// serving models/tiny_decoder: chat whole and streamed, a completion, a
// session over two turns, and errors as the client's typed exceptions.
// Exit status 0 when every check holds; each failure is printed.
//
//   node tests/integration/openai_client.mjs --port PORT
//
// The package is installed into .deps/node-openai (npm install
// --ignore-scripts) when missing; NODE_OPENAI_DIR overrides the place.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const DIR = process.env.NODE_OPENAI_DIR ?? path.join(ROOT, '.deps/node-openai');
const PACKAGE = 'openai@6.30.1';  // the newest line that runs on Debian's Node 20
const ENTRY = path.join(DIR, 'node_modules/openai/index.mjs');

const port = process.argv[process.argv.indexOf('--port') + 1];
if (!port) {
  console.error('usage: openai_client.mjs --port PORT');
  process.exit(2);
}
if (!fs.existsSync(ENTRY)) {
  fs.mkdirSync(DIR, { recursive: true });
  execFileSync('npm', ['install', '--ignore-scripts', '--no-save', '--prefix', DIR, PACKAGE], { stdio: 'inherit' });
}
const { default: OpenAI } = await import(pathToFileURL(ENTRY).href);

const client = new OpenAI({ apiKey: 'unused', baseURL: `http://127.0.0.1:${port}/v1`, maxRetries: 0 });
let failures = 0;
function check(ok, what) {
  if (!ok) {
    ++failures;
    console.error(`FAIL: ${what}`);
  } else {
    console.log(`ok: ${what}`);
  }
}

const messages = [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'I have a rash' }];

// Chat, whole.
const whole = await client.chat.completions.create({ model: 'tiny_decoder', messages, max_tokens: 8, temperature: 0 });
check(whole.object === 'chat.completion', `chat object (${whole.object})`);
check(whole.choices.length === 1 && whole.choices[0].message.role === 'assistant', 'one assistant choice');
const text = whole.choices[0].message.content;
check(typeof text === 'string' && text.length > 0, `chat text (${JSON.stringify(text)})`);
check(['stop', 'length'].includes(whole.choices[0].finish_reason), 'finish_reason');
check(whole.usage.total_tokens === whole.usage.prompt_tokens + whole.usage.completion_tokens, 'usage adds up');

// Chat, streamed: the deltas add up to the same greedy text; usage last.
const stream = await client.chat.completions.create({
  model: 'tiny_decoder', messages, max_tokens: 8, temperature: 0, stream: true,
  stream_options: { include_usage: true },
});
let streamed = '';
let chunks = 0;
let usage = null;
let finish = null;
for await (const chunk of stream) {
  ++chunks;
  if (chunk.usage) usage = chunk.usage;
  if (chunk.choices.length > 0) {
    streamed += chunk.choices[0].delta.content ?? '';
    if (chunk.choices[0].finish_reason) finish = chunk.choices[0].finish_reason;
  }
}
check(streamed === text, `streamed text equals the whole (${JSON.stringify(streamed)})`);
check(chunks >= 2, `several chunks (${chunks})`);
check(finish === whole.choices[0].finish_reason, 'streamed finish_reason');
check(usage !== null && usage.completion_tokens === whole.usage.completion_tokens, 'streamed usage');

// A completion.
const completion = await client.completions.create({
  model: 'tiny_decoder', prompt: 'I have been feeling', max_tokens: 6, temperature: 0, seed: 3,
});
check(completion.object === 'text_completion' && typeof completion.choices[0].text === 'string', 'completion');

// A session over two turns (the header, through the client's per-request options).
const session = { headers: { 'X-Session-Id': `npm-${process.pid}` } };
const turn1 = await client.chat.completions.create(
  { model: 'tiny_decoder', messages: [{ role: 'user', content: 'I have a rash' }], max_tokens: 4, temperature: 0 },
  session);
const turn2 = await client.chat.completions.create(
  { model: 'tiny_decoder', messages: [{ role: 'user', content: 'It itches' }], max_tokens: 4, temperature: 0 },
  session);
const alone = await client.chat.completions.create(
  { model: 'tiny_decoder', messages: [{ role: 'user', content: 'It itches' }], max_tokens: 4, temperature: 0 });
check(turn1.usage.prompt_tokens > 0 && turn2.usage.prompt_tokens > alone.usage.prompt_tokens,
  `the second turn's prompt holds the first (${turn2.usage.prompt_tokens} > ${alone.usage.prompt_tokens})`);

// Errors come as the client's typed exceptions, with OpenAI's error body.
async function expectError(request, status, Type, part) {
  try {
    await client.chat.completions.create(request);
    check(false, `expected ${status} for ${JSON.stringify(request)}`);
  } catch (e) {
    check(e instanceof Type && e.status === status, `${Type.name} ${status} (${e.constructor.name} ${e.status})`);
    check(typeof e.message === 'string' && e.message.includes(part), `message names '${part}' (${e.message})`);
    check(e.error && typeof e.error.type === 'string', 'the error body has a type');
  }
}
await expectError({ model: 'nope', messages }, 404, OpenAI.NotFoundError, 'nope');
await expectError({ model: 'tiny_decoder', messages, temperature: -1 }, 400, OpenAI.BadRequestError, 'temperature');
await expectError({ model: 'tiny_decoder', messages: [] }, 400, OpenAI.BadRequestError, 'messages');

if (failures > 0) {
  console.error(`${failures} check(s) failed`);
  process.exit(1);
}
console.log('all openai client checks passed');
