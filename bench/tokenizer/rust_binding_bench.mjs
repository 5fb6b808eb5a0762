#!/usr/bin/env node
// SPDX-License-Identifier: Apache-2.0
// The Rust library's side of the tokenizer comparison: Hugging Face
// `tokenizers@0.23.2` (the official Rust crate behind its napi binding, as
// installed by `scripts/make_tokenizer_goldens.mjs --check-rust`) on the same
// corpus and vocab as tokenizer_bench, on one thread, with its batch call.
//
// Usage: RAYON_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false \
//          /usr/bin/time -f '%P CPU' node bench/tokenizer/rust_binding_bench.mjs VOCAB CORPUS [SECONDS] [BATCH]
//
// Each pass hands the whole corpus to `encodeBatch` in calls of BATCH texts
// (default: all of them in one call), [CLS]/[SEP], truncation at 512, no
// padding, and waits for the result; only those calls are timed. Token counts
// and the id checksum come from an untimed warm-up pass, so reading ids back
// into JavaScript is not charged to the library. What is still charged: the
// binding turns each input string into a Rust String and wraps each result in
// a JS object; the "boundary" line estimates that cost with a batch of as many
// empty strings. The checksum is the same FNV-1a over all ids that
// tokenizer_bench prints, so equal checksums mean identical ids.
//
// Both variables are set here when missing, before the binding loads, so the
// library runs serially. The "process CPU" figure (CPU time of all the
// process's threads over wall time while timing; /usr/bin/time gives the same
// for the whole run) confirms it: about 100% is one core, less means the
// machine was busy with other work.
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

process.env.RAYON_NUM_THREADS ??= '1';
process.env.TOKENIZERS_PARALLELISM ??= 'false';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const [vocabPath, corpusPath, secondsArg, batchArg] = process.argv.slice(2);
if (!vocabPath || !corpusPath) {
  console.error('usage: rust_binding_bench.mjs VOCAB CORPUS [SECONDS] [BATCH]');
  process.exit(2);
}
const entry = path.join(ROOT, '.deps/node-tokenizers-rust/node_modules/tokenizers/index.js');
if (!fs.existsSync(entry)) {
  console.error(`${entry} missing: run node scripts/make_tokenizer_goldens.mjs --check-rust once`);
  process.exit(1);
}
const { Tokenizer } = createRequire(entry)(entry);

const lines = fs.readFileSync(vocabPath, 'utf8').split('\n');
if (lines.at(-1) === '') lines.pop();
const vocab = Object.fromEntries(lines.map((t, i) => [t, i]));
const special = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'];
const cls = { SpecialToken: { id: '[CLS]', type_id: 0 } };
const sep = { SpecialToken: { id: '[SEP]', type_id: 0 } };
const tok = Tokenizer.fromString(JSON.stringify({
  version: '1.0',
  truncation: null,
  padding: null,
  added_tokens: special.map((content) => ({
    id: vocab[content], content, single_word: false, lstrip: false, rstrip: false, normalized: false,
    special: true,
  })),
  normalizer: {
    type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true, strip_accents: null,
    lowercase: true,
  },
  pre_tokenizer: { type: 'BertPreTokenizer' },
  post_processor: {
    type: 'TemplateProcessing',
    single: [cls, { Sequence: { id: 'A', type_id: 0 } }, sep],
    pair: [cls, { Sequence: { id: 'A', type_id: 0 } }, sep, { Sequence: { id: 'B', type_id: 1 } },
           { SpecialToken: { id: '[SEP]', type_id: 1 } }],
    special_tokens: {
      '[CLS]': { id: '[CLS]', ids: [vocab['[CLS]']], tokens: ['[CLS]'] },
      '[SEP]': { id: '[SEP]', ids: [vocab['[SEP]']], tokens: ['[SEP]'] },
    },
  },
  decoder: null,
  model: {
    type: 'WordPiece', unk_token: '[UNK]', continuing_subword_prefix: '##',
    max_input_chars_per_word: 100, vocab,
  },
}));
tok.setTruncation(512);

// The same reading rules as tokenizer_bench: .jsonl gives "a" and "b" as
// separate texts; anything else is one text per line.
const texts = [];
const raw = fs.readFileSync(corpusPath, 'utf8').split('\n');
if (corpusPath.endsWith('.jsonl')) {
  for (const line of raw) {
    if (!line) continue;
    const e = JSON.parse(line);
    texts.push(e.a);
    if ('b' in e) texts.push(e.b);
  }
} else {
  if (raw.at(-1) === '') raw.pop();
  texts.push(...raw);
}
const bytes = texts.reduce((n, t) => n + Buffer.byteLength(t), 0);
const seconds = Number(secondsArg ?? 2);
const batch = Number(batchArg ?? texts.length);
const chunks = [];
for (let i = 0; i < texts.length; i += batch) chunks.push(texts.slice(i, i + batch));

async function pass(inputs) {
  const out = [];
  for (const chunk of inputs) out.push(await tok.encodeBatch(chunk, { addSpecialTokens: true }));
  return out;
}

async function timed(inputs) {
  let passes = 0;
  let elapsed = 0;
  const cpuStart = process.cpuUsage();  // all threads of the process
  const start = process.hrtime.bigint();
  do {
    await pass(inputs);
    ++passes;
    elapsed = Number(process.hrtime.bigint() - start) / 1e9;
  } while (elapsed < seconds);
  const cpu = process.cpuUsage(cpuStart);
  return { passes, elapsed, cpuPercent: (100 * (cpu.user + cpu.system)) / 1e6 / elapsed };
}

// Warm-up, token count and checksum (FNV-1a, 32 bits: every id, then
// 0xFFFFFFFF after each text), untimed.
let tokensPerPass = 0;
let hash = 0x811C9DC5;
const mix = (v) => { hash = Math.imul((hash ^ v) >>> 0, 0x01000193) >>> 0; };
for (const encodings of await pass(chunks)) {
  for (const e of encodings) {
    const ids = e.getIds();
    tokensPerPass += ids.length;
    for (const id of ids) mix(id);
    mix(0xFFFFFFFF);
  }
}

const { passes, elapsed, cpuPercent } = await timed(chunks);
const empty = chunks.map((c) => c.map(() => ''));
await pass(empty);
const boundary = await timed(empty);

const sentences = passes * texts.length;
console.log(`corpus: ${texts.length} sentences, ${(bytes / 1e6).toFixed(2)} MB, ${tokensPerPass} tokens per pass` +
            ' (incl. [CLS]/[SEP])');
console.log(`library: tokenizers@0.23.2 napi, encodeBatch x${chunks.length} per pass, ` +
            `RAYON_NUM_THREADS=${process.env.RAYON_NUM_THREADS} ` +
            `TOKENIZERS_PARALLELISM=${process.env.TOKENIZERS_PARALLELISM}`);
console.log(`passes: ${passes} in ${elapsed.toFixed(3)} s, process CPU ${cpuPercent.toFixed(0)}% of one core`);
console.log(`sentences/s: ${Math.round(sentences / elapsed)}`);
console.log(`tokens/s: ${Math.round((passes * tokensPerPass) / elapsed)}`);
console.log(`MB/s: ${((passes * bytes) / 1e6 / elapsed).toFixed(1)}`);
console.log(`ns/sentence: ${Math.round((elapsed * 1e9) / sentences)}`);
console.log(`boundary (empty strings): ns/sentence: ` +
            `${Math.round((boundary.elapsed * 1e9) / (boundary.passes * texts.length))}`);
console.log(`ids checksum: ${hash.toString(16).padStart(8, '0')}`);
