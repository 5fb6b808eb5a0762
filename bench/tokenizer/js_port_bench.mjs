#!/usr/bin/env node
// SPDX-License-Identifier: Apache-2.0
// Reference point for tokenizer_bench: the same measurement (single thread,
// [CLS]/[SEP], one text at a time, ~SECONDS) with the JavaScript port of
// Hugging Face tokenizers (@huggingface/tokenizers, as installed by
// scripts/make_tokenizer_goldens.mjs). It is not the Rust library; it only
// gives a second implementation measured on the same machine and corpus.
// Usage: node bench/tokenizer/js_port_bench.mjs VOCAB CORPUS [SECONDS]
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const [vocabPath, corpusPath, secondsArg] = process.argv.slice(2);
if (!vocabPath || !corpusPath) {
  console.error('usage: js_port_bench.mjs VOCAB CORPUS [SECONDS]');
  process.exit(2);
}
const jsDir = process.env.NODE_TOKENIZERS_DIR ?? path.join(ROOT, '.deps/node-tokenizers');
const js = await import(pathToFileURL(path.join(jsDir, 'node_modules/@huggingface/tokenizers/dist/tokenizers.mjs')).href);

const lines = fs.readFileSync(vocabPath, 'utf8').split('\n');
if (lines.at(-1) === '') lines.pop();
const vocab = Object.fromEntries(lines.map((t, i) => [t, i]));
const special = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'];
const tok = new js.Tokenizer({
  added_tokens: special.map((content) => ({ id: vocab[content], content, special: true, normalized: false })),
  normalizer: { type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: true },
  pre_tokenizer: { type: 'BertPreTokenizer' },
  post_processor: { type: 'BertProcessing', sep: ['[SEP]', vocab['[SEP]']], cls: ['[CLS]', vocab['[CLS]']] },
  decoder: null,
  model: { type: 'WordPiece', unk_token: '[UNK]', continuing_subword_prefix: '##', max_input_chars_per_word: 100, vocab },
}, {});

const texts = [];
for (const line of fs.readFileSync(corpusPath, 'utf8').split('\n')) {
  if (corpusPath.endsWith('.jsonl')) {
    if (!line) continue;
    const e = JSON.parse(line);
    texts.push(e.a);
    if ('b' in e) texts.push(e.b);
  } else {
    texts.push(line);
  }
}
if (!corpusPath.endsWith('.jsonl') && texts.at(-1) === '') texts.pop();
const bytes = texts.reduce((n, t) => n + Buffer.byteLength(t), 0);
const seconds = Number(secondsArg ?? 2);
let tokens = 0;
for (const t of texts) tok.encode(t);  // warm-up
let passes = 0;
const start = process.hrtime.bigint();
let elapsed = 0;
do {
  for (const t of texts) tokens += tok.encode(t).ids.length;
  ++passes;
  elapsed = Number(process.hrtime.bigint() - start) / 1e9;
} while (elapsed < seconds);
console.log(`corpus: ${texts.length} sentences, ${(bytes / 1e6).toFixed(2)} MB`);
console.log(`sentences/s: ${Math.round((passes * texts.length) / elapsed)}`);
console.log(`tokens/s: ${Math.round(tokens / elapsed)}`);
console.log(`MB/s: ${((passes * bytes) / 1e6 / elapsed).toFixed(1)}`);
