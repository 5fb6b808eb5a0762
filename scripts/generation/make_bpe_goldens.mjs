#!/usr/bin/env node
// SPDX-License-Identifier: Apache-2.0
//
// Golden data for the byte-level BPE tokenizer (src/pipeline/bpe_tokenizer.*),
// written under tests/data/bpe/:
//   corpus.jsonl   one JSON string per line: the texts (generated here from
//                  fixed fragments with a seeded PRNG, so a re-run writes the
//                  same bytes)
//   goldens.txt    line i: the ids of corpus text i (no special tokens added)
//   decode.jsonl   {"ids": [...], "text": "..."}: arbitrary id sequences (split
//                  UTF-8 characters, special tokens) and their decoded text,
//                  ill-formed bytes replaced by U+FFFD, special tokens skipped
//
// The tokenizer is models/tiny_decoder/tokenizer.json (trained by
// scripts/generation/train_decoder.py). Ids come from the JavaScript port of
// Hugging Face tokenizers (npm @huggingface/tokenizers); every encoding and
// decoding is also checked against the Rust library through its Node binding
// (npm tokenizers@0.23.2, a prebuilt module). Where the two differ the Rust
// ids are written (the JS port's \s is JavaScript's, which holds U+FEFF and
// not U+0085; the Rust crate's is Unicode White_Space) and the count printed.
//
// Usage: node scripts/generation/make_bpe_goldens.mjs
//   NODE_TOKENIZERS_DIR       where @huggingface/tokenizers is (default .deps/node-tokenizers)
//   NODE_TOKENIZERS_RUST_DIR  where tokenizers is (default .deps/node-tokenizers-rust)
// Both are installed there with `npm install --ignore-scripts` when missing.

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const JS_DIR = process.env.NODE_TOKENIZERS_DIR ?? path.join(ROOT, '.deps/node-tokenizers');
const RUST_DIR = process.env.NODE_TOKENIZERS_RUST_DIR ?? path.join(ROOT, '.deps/node-tokenizers-rust');
const TOKENIZER = path.join(ROOT, 'models/tiny_decoder/tokenizer.json');
const OUT_DIR = path.join(ROOT, 'tests/data/bpe');

function install(dir, pkg, entry) {
  if (!fs.existsSync(path.join(dir, entry))) {
    fs.mkdirSync(dir, { recursive: true });
    execFileSync('npm', ['install', '--ignore-scripts', '--no-save', '--prefix', dir, pkg], { stdio: 'inherit' });
  }
  return path.join(dir, entry);
}

function mulberry32(seed) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6D2B79F5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const rand = mulberry32(20261207);
const int = (n) => Math.floor(rand() * n);
const pick = (arr) => arr[int(arr.length)];

const WORDS = `I have been feeling tired since the second dose my head hurts and the rash is spreading
nothing new to report doctor nurse hospital fever nausea dizzy headache swelling arm chest pain
breathing the of and to a in is was it for on with as at by from yesterday today tomorrow week
ibuprofen paracetamol vaccine injection tablets 500mg twice daily TOKENIZER Tokenization BPE`.split(/\s+/);
const CONTRACTIONS = ["I'm", "don't", "it's", "we're", "they've", "you'll", "she'd", "I'M", "DON'T", "'s", "'t",
  "'re", "'ve", "'m", "'ll", "'d", "o'clock", "rock'n'roll", "''", "'''s", " 's", "x'", "'"];
const ACCENTED = ['café', 'naïve', 'résumé', 'Zürich', 'São', 'Ångström', 'İstanbul', 'straße', 'ﬁancé', 'Dvořák',
  'Łódź', 'Ελληνικά', 'ΟΔΟΣ', 'Москва', 'Київ', 'Tiếng Việt', 'e\u0301', 'a\u0308\u0301', 'çok yorgunum', 'başım'];
const CJK = ['北京欢迎你', '我爱自然语言处理', '東京都', 'こんにちは世界', 'カタカナ', 'ﾊﾝｶｸ', '안녕하세요', '𠀀𠮷野家',
  'مرحبا بالعالم', 'שָׁלוֹם', 'नमस्ते', 'ภาษาไทย', '𝐀𝐁𝐂 𝑥𝑦𝑧', 'ＡＢＣ１２３'];
const EMOJI = ['😀', '😂🤣', '👍🏽', '👨‍👩‍👧‍👦', '🇺🇸🇯🇵', '❤️', '☕', '🚀✨', '🏳️‍🌈', '©', '™', '∑∫√∞', '€100', '°C', '±0.5'];
const NUMBERS = ['3.14159', '1,000,000', '2023-10-05', '+1 (555) 123-4567', '0x1F', '1e-9', '-42', '007', '12:30pm',
  '99.9%', 'v1.2.3', '192.168.0.1', '½', '²', 'Ⅻ', '①②', '١٢٣', '०१२', '12345678901234567890'];
const SPACES = [' ', '  ', '   ', '\t', '\n', '\n\n', '\r\n', ' \n ', '\u00a0', '\u2003', '\u3000', '\u2028', '\u0085',
  '\u000b', '\u000c', '\u200b', '\ufeff', '\u180e', '\u001c'];
const PUNCT = ['!', '...', '?!', '—', '“quoted”', '(parens)', '[x]', '{y}', '<z>', '@', '#', '&&', '__init__', '::',
  '->', '``', '\\', '/', '%', '。', '！', '¿', '¡', '§', '•'];
const SPECIAL = ['<|endoftext|>', '<|endoftext|><|endoftext|>', 'a<|endoftext|>b', ' <|endoftext|> ',
  '<|endoftext|', '|endoftext|>', '<|ENDOFTEXT|>'];
const CONTROL = ['\u0000', '\u0007', '\u001b[31m', '\u007f', '\u00ad', '\ue000', '\u202e', '\ufffd'];

function fragment() {
  const r = rand();
  if (r < 0.40) return pick(WORDS);
  if (r < 0.50) return pick(CONTRACTIONS);
  if (r < 0.58) return pick(ACCENTED);
  if (r < 0.64) return pick(CJK);
  if (r < 0.69) return pick(EMOJI);
  if (r < 0.76) return pick(NUMBERS);
  if (r < 0.84) return pick(PUNCT);
  if (r < 0.87) return pick(SPECIAL);
  if (r < 0.90) return pick(CONTROL);
  if (r < 0.905) return pick(WORDS).repeat(20 + int(40));
  return pick(SPACES);
}

function text() {
  const r = rand();
  if (r < 0.02) return '';
  if (r < 0.06) return Array.from({ length: 1 + int(5) }, () => pick(SPACES)).join('');
  const n = 1 + int(r < 0.9 ? 12 : 60);
  let out = '';
  for (let i = 0; i < n; ++i) {
    const sep = rand();
    if (i > 0) out += sep < 0.7 ? ' ' : sep < 0.85 ? '' : pick(SPACES);
    out += fragment();
  }
  return out;
}

function same(a, b) {
  return JSON.stringify(a) === JSON.stringify(b);
}

async function main() {
  const js = await import(pathToFileURL(install(JS_DIR, '@huggingface/tokenizers@0.2.0',
    'node_modules/@huggingface/tokenizers/dist/tokenizers.mjs')).href);
  const rustEntry = install(RUST_DIR, 'tokenizers@0.23.2', 'node_modules/tokenizers/index.js');
  const { Tokenizer: RustTokenizer } = createRequire(rustEntry)(rustEntry);
  const json = fs.readFileSync(TOKENIZER, 'utf8');
  const jsTok = new js.Tokenizer(JSON.parse(json), {});
  const rustTok = RustTokenizer.fromString(json);

  const corpus = [];
  // Corpus texts of the model's own training data come first (its domain).
  const sae = fs.readFileSync(path.join(ROOT, 'data/sae/corpus.jsonl'), 'utf8').split('\n').filter(Boolean);
  for (let i = 0; i < 400; ++i) corpus.push(JSON.parse(sae[(i * 31) % sae.length]).text);
  for (let i = 0; i < 2600; ++i) corpus.push(text());

  const goldens = [];
  let differ = 0;
  for (const [index, t] of corpus.entries()) {
    const ids = Array.from(jsTok.encode(t, { add_special_tokens: false }).ids);
    const rust = (await rustTok.encode(t, null, { addSpecialTokens: false })).getIds();
    if (!same(ids, rust)) {
      // The JS port's \s is JavaScript's (U+FEFF in, U+0085 out); the Rust
      // crate's is Unicode White_Space. The Rust ids are the goldens.
      if (++differ <= 5) console.error(`entry ${index} ${JSON.stringify(t)}: js ${ids} rust ${rust}`);
    }
    const back = await rustTok.decode(rust, false);
    if (back !== t) throw new Error(`entry ${index}: byte-level round trip lost text: ${JSON.stringify(back)}`);
    goldens.push([t, rust]);
  }
  if (differ > 0) console.error(`[bpe goldens] ${differ} texts where the JS port differs from Rust (Rust ids kept)`);

  // Decoding arbitrary id sequences: pieces of multi-byte characters, special
  // tokens in between.
  const vocabSize = rustTok.getVocabSize(true);
  const eot = rustTok.tokenToId('<|endoftext|>');
  const decode = [];
  for (let i = 0; i < 400; ++i) {
    const n = 1 + int(12);
    const ids = Array.from({ length: n }, () => (rand() < 0.1 ? eot : rand() < 0.5 ? int(256) : int(vocabSize)));
    const text = await rustTok.decode(ids, true);
    const jsText = jsTok.decode(ids, { skip_special_tokens: true });
    if (jsText !== text) console.error(`[bpe goldens] decode ${ids}: js ${JSON.stringify(jsText)} rust ${JSON.stringify(text)} (Rust kept)`);
    decode.push({ ids, text });
  }

  fs.mkdirSync(OUT_DIR, { recursive: true });
  fs.writeFileSync(path.join(OUT_DIR, 'corpus.jsonl'), goldens.map(([t]) => JSON.stringify(t)).join('\n') + '\n');
  fs.writeFileSync(path.join(OUT_DIR, 'goldens.txt'), goldens.map(([, ids]) => ids.join(' ')).join('\n') + '\n');
  fs.writeFileSync(path.join(OUT_DIR, 'decode.jsonl'), decode.map((d) => JSON.stringify(d)).join('\n') + '\n');
  console.error(`[bpe goldens] ${goldens.length} encodings, ${decode.length} decodings written to ` +
                `${path.relative(ROOT, OUT_DIR)}/`);
}

await main();
