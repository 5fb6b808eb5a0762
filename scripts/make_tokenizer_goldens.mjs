#!/usr/bin/env node
// SPDX-License-Identifier: Apache-2.0
//
// Builds the tokenizer golden data under tests/data/tokenizer/:
//   corpus.jsonl            one JSON object per line: {"a": text} or {"a": text, "b": pair text}
//   goldens.txt             line i: ids of corpus entry i with [CLS]/[SEP], no truncation;
//                           for pairs, a TAB and the token type ids as a 0/1 string
//   goldens_truncated.txt   line i: "<max_length>\t<ids>[\t<type ids>]" for selected entries
//                           (its own line order; each line starts with the corpus index:
//                           "<index>\t<max_length>\t<ids>[\t<type ids>]")
//
// The corpus is generated here from fixed templates with a seeded PRNG, so a
// re-run reproduces the same bytes. Ids come from the JavaScript port of
// Hugging Face tokenizers (npm @huggingface/tokenizers, pure JS) configured as
// bert-base-uncased: a tokenizer.json with the WordPiece model over the real
// vocab.txt, BertNormalizer (uncased), BertPreTokenizer, the [CLS]/[SEP]
// template, and [PAD] [UNK] [CLS] [SEP] [MASK] as special added tokens.
//
// Reference semantics are those of the Rust `tokenizers` crate (what
// BertTokenizerFast runs). The JS port differs from it in three places, which
// are overridden below (see rustBertNormalize):
//   1. CJK spacing walks UTF-16 code units in JS, so astral ideographs
//      (Extension B and later) are never isolated; Rust walks code points.
//      Rust's ranges also start the fourth extension block at U+2B920.
//   2. JS lowercases the whole string with String#toLowerCase, which applies
//      the context-sensitive Final_Sigma rule; Rust's NormalizedString
//      lowercases char by char (Σ -> σ everywhere).
//   3. JS lowercases before stripping accents; Rust strips (NFD, drop Mn)
//      first. strip_accents = null means "same as lowercase" in both.
// The JS port has no truncation; the Rust library's longest-first rule is
// implemented in truncateLongestFirst and countedLength.
//
// Usage: node scripts/make_tokenizer_goldens.mjs [--check-rust]
//   --check-rust        instead of writing, compare the committed goldens with
//                       the Rust library itself through its official Node
//                       binding (npm `tokenizers@0.23.2`, a prebuilt napi
//                       module; installed into .deps/node-tokenizers-rust) and
//                       print the mismatches
//   ORTSERVE_VOCAB      vocab.txt (default .deps/vocab/bert-base-uncased-vocab.txt;
//                       run scripts/fetch_vocab.sh first)
//   NODE_TOKENIZERS_DIR where @huggingface/tokenizers is installed
//                       (default .deps/node-tokenizers; installed there with
//                       `npm install --ignore-scripts` when missing)

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const VOCAB = process.env.ORTSERVE_VOCAB ?? path.join(ROOT, '.deps/vocab/bert-base-uncased-vocab.txt');
const JS_DIR = process.env.NODE_TOKENIZERS_DIR ?? path.join(ROOT, '.deps/node-tokenizers');
const JS_PACKAGE = '@huggingface/tokenizers@0.2.0';
const OUT_DIR = path.join(ROOT, 'tests/data/tokenizer');

// ---------------------------------------------------------------------------
// The reference tokenizer.

async function loadTokenizersJs() {
  const entry = path.join(JS_DIR, 'node_modules/@huggingface/tokenizers/dist/tokenizers.mjs');
  if (!fs.existsSync(entry)) {
    fs.mkdirSync(JS_DIR, { recursive: true });
    console.error(`[goldens] npm install --ignore-scripts ${JS_PACKAGE} into ${JS_DIR}`);
    execFileSync('npm', ['install', '--ignore-scripts', '--no-save', '--prefix', JS_DIR, JS_PACKAGE],
                 { stdio: 'inherit' });
  }
  return import(pathToFileURL(entry).href);
}

function readVocab(file) {
  if (!fs.existsSync(file)) {
    throw new Error(`${file} not found; run scripts/fetch_vocab.sh first`);
  }
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  if (lines.at(-1) === '') lines.pop();
  const vocab = {};
  lines.forEach((token, id) => { vocab[token] = id; });
  return vocab;
}

// A tokenizer.json equivalent to BertTokenizerFast.from_pretrained("bert-base-uncased").
function bertUncasedTokenizerJson(vocab) {
  const special = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'];
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: special.map((content) => ({
      id: vocab[content], content, single_word: false, lstrip: false, rstrip: false,
      normalized: false, special: true,
    })),
    normalizer: {
      type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true,
      strip_accents: null, lowercase: true,
    },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '[CLS]', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } },
               { SpecialToken: { id: '[SEP]', type_id: 0 } }],
      pair: [{ SpecialToken: { id: '[CLS]', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } },
             { SpecialToken: { id: '[SEP]', type_id: 0 } }, { Sequence: { id: 'B', type_id: 1 } },
             { SpecialToken: { id: '[SEP]', type_id: 1 } }],
      special_tokens: {
        '[CLS]': { id: '[CLS]', ids: [vocab['[CLS]']], tokens: ['[CLS]'] },
        '[SEP]': { id: '[SEP]', ids: [vocab['[SEP]']], tokens: ['[SEP]'] },
      },
    },
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    model: {
      type: 'WordPiece', unk_token: '[UNK]', continuing_subword_prefix: '##',
      max_input_chars_per_word: 100, vocab,
    },
  };
}

// Rust tokenizers' is_chinese_char (normalizers/bert.rs), by code point.
function isChineseChar(cp) {
  return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) ||
         (cp >= 0x20000 && cp <= 0x2A6DF) || (cp >= 0x2A700 && cp <= 0x2B73F) ||
         (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B920 && cp <= 0x2CEAF) ||
         (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

// BertNormalizer with the Rust crate's order and granularity (see header).
function rustBertNormalize(text) {
  const cfg = this.config;
  if (cfg.clean_text) text = this.clean_text(text);
  if (cfg.handle_chinese_chars) {
    let out = '';
    for (const ch of text) out += isChineseChar(ch.codePointAt(0)) ? ` ${ch} ` : ch;
    text = out;
  }
  const strip = cfg.strip_accents ?? cfg.lowercase;
  if (strip) text = text.normalize('NFD').replace(/\p{Mn}/gu, '');
  if (cfg.lowercase) {
    let out = '';
    for (const ch of text) out += ch.toLowerCase();
    text = out;
  }
  return text;
}

// The length the Rust library compares when it truncates a pair: the tokens of
// the shortest prefix of whole words (pre-tokens or added tokens) that holds
// at least `maxLength` tokens, or all of them. Found by experiment with
// tokenizers@0.23.2 (see docs/tokenizer.md). With BertPreTokenizer a word
// never contains '#', so exactly the pieces after a word's first one start
// with the "##" prefix.
function countedLength(tokens, maxLength) {
  if (tokens.length <= maxLength) return tokens.length;
  let k = maxLength;
  while (k < tokens.length && tokens[k].startsWith('##')) ++k;
  return k;
}

// Longest-first truncation of a pair (a, b) of id lists (b === null for a
// single text); `budget` excludes the special tokens. `counted` holds the two
// lengths compared (countedLength; the real lengths when omitted). With n1 the
// shorter: if n1 is at most half the budget, keep it whole and give the longer
// the rest, else budget / 2 for the shorter and the rest for the longer (a tie
// makes b the longer).
function truncateLongestFirst(a, b, budget, counted = [a.length, b?.length ?? 0]) {
  if (b === null) return [a.slice(0, budget), null];
  let [n1, n2] = counted;
  if (n1 + n2 <= budget) return [a, b];
  const swap = n1 > n2;
  if (swap) [n1, n2] = [n2, n1];
  n2 = n1 > budget ? n1 : Math.max(n1, budget - n1);
  if (n1 + n2 > budget) {
    n1 = Math.floor(budget / 2);
    n2 = n1 + (budget % 2);
  }
  if (swap) [n1, n2] = [n2, n1];
  return [a.slice(0, n1), b.slice(0, n2)];
}

// ---------------------------------------------------------------------------
// The corpus: deterministic, from templates.

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
const rand = mulberry32(20240521);
const int = (n) => Math.floor(rand() * n);
const pick = (arr) => arr[int(arr.length)];
const chance = (p) => rand() < p;

const COMMON = `the of and to in is was for on that with as by at from it he she they we you this
an be are were not but or which have has had been its their his her one all would there what so up
out if about who get go me when make can like time no just him know take people into year your good
some could them see other than then now look only come over think also back after use two how our
work first well way even new want because any these give day most us patient doctor hospital
running runner unbelievable tokenization tokenizer transformers embedding inference server latency
throughput batching quantization kubernetes deployment configuration microservice`.split(/\s+/);
const MEDICAL = `acetaminophen ibuprofen hepatocellular carcinoma myocardial infarction
electroencephalography pneumonoultramicroscopicsilicovolcanoconiosis thrombocytopenia
hypercholesterolemia bronchopneumonia gastroenteritis tachycardia bradycardia angioplasty
cholecystectomy osteoarthritis schizophrenia immunoglobulin erythrocyte leukocyte metformin
atorvastatin amoxicillin clavulanate dexamethasone methotrexate adenocarcinoma glioblastoma
hemoglobin a1c mg/dL mmHg b.i.d. q.i.d. p.r.n. SARS-CoV-2 COVID-19 HbA1c eGFR BRCA1 HER2+ IL-6
TNF-α β-blocker α-synuclein 5-fluorouracil anti-PD-L1 CD4+ T-cells`.split(/\s+/);
const ACCENTED = `café naïve résumé Zürich São Paulo Ångström İstanbul Œuvre façade Dvořák Łódź
Ærøskøbing straße STRASSE ẞ ﬁancé crème brûlée jalapeño piñata Citroën Škoda Ñandú
coöperate Mötley Crüe Hôtel Dieu Ελληνικά ΟΔΟΣ Σίσυφος ἀρχή Москва Ёлка ЙОД Київ
Đà Nẵng Tiếng Việt Ḥanukkah ǅemal ǈubljana Ǆ ĳssel Ĳ ﬀ Å Ω K ḱ`.split(/\s+/);
const SCRIPTS = [
  '北京欢迎你', '我爱自然语言处理', '東京都', '中华人民共和国', '㐀㐁㐂', '𠀀𠀁𠮷野家', '𪜀𫝀𫠠𫡀𬺰', '豈更車',
  '丽丸', 'こんにちは世界', 'カタカナ', 'ガギグゲゴ', 'ﾊﾝｶｸ', '안녕하세요', '한국어 형태소', 'ㄱㄴㄷ',
  'مرحبا بالعالم', 'اَلْعَرَبِيَّةُ', 'שָׁלוֹם עולם', 'नमस्ते दुनिया', 'हिन्दी', 'বাংলা', 'தமிழ்', 'ภาษาไทย',
  'ສະບາຍດີ', 'ქართული', 'Հայերեն', 'አማርኛ', 'ᠮᠣᠩᠭᠣᠯ', 'བོད་ཡིག', 'ꯃꯤꯇꯩ', '𝐀𝐁𝐂 𝑥𝑦𝑧', '𝔘𝔫𝔦𝔠𝔬𝔡𝔢',
  'ＡＢＣ ｆｕｌｌｗｉｄｔｈ １２３', 'Ⅻ ⅷ', '①②③', '½ ¾ ² ³', '١٢٣٤٥', '०१२३', '𐌰𐌱𐌲', '𝅘𝅥𝅮 𝅗𝅥',
];
const EMOJI = ['😀', '😂🤣', '👍🏽', '👨‍👩‍👧‍👦', '🇺🇸🇯🇵', '❤️', '☕', '🚀✨', '🙈🙉🙊', '🏳️‍🌈', '©', '®', '™',
  '∑∫√∞', '→⇒↔', '♠♥♦♣', '€100', '£5', '¥1000', '₹500', '$3.50', '°C', '±0.5', '≤≥≠'];
const PUNCT = ['!', '!!!', '???', '?!', '...', '…', '—', '–', '-', '--', '“quoted”', '‘single’', '«guillemets»',
  '¿Qué?', '¡Hola!', '•', '§', '¶', '(parens)', '[brackets]', '{braces}', '<angle>', '@', '#', '##', '###hashtag',
  '&', '*', '%', '^', '~', '`', '|', '\\', '/', '_', '__init__', ':', ';', '"', "'", ',', '.', '、', '。', '！', '？',
  '「括弧」', '『二重』', '【強調】', '〜', '・', '‰', '′″', '⁂', '※', '¦', '¬', '·', '؟', '،', '।', '꧁꧂'];
const NUMBERS = ['3.14159', '1,000,000', '2023-10-05', '+1 (555) 123-4567', '0x1F', '1e-9', '-42', '007',
  '12:30pm', '99.9%', 'v1.2.3', '192.168.0.1', '1/2', '10^6', '2nd', '3rd', '21st', '1990s', '#1', 'A4',
  '9780262035613', '3,5', '1 000', '٣.١٤'];
const URLS = ['https://example.com/path?q=1&r=2#frag', 'http://localhost:8080/v2/models/bert/infer',
  'user.name+tag@example.org', 'ftp://ftp.example.net/pub/file.tar.gz', 'www.huggingface.co',
  'C:\\Users\\me\\file.txt', '/usr/local/bin/ortserve', '@username', 'snake_case_name', 'CamelCaseName',
  'kebab-case-name', 'int main() { return 0; }', 'a==b&&c!=d', 'x->y', 'foo::bar', '<div class="x">',
  '$HOME', '%PATH%', '`code`', '**bold**', '~~strike~~'];
const SPECIAL_TEXT = ['[CLS]', '[SEP]', '[PAD]', '[UNK]', '[MASK]', '[cls]', '[Mask]', '[MASK][MASK]',
  'x[SEP]y', '[[SEP]]', '[unused1]', '[unused0]', '[MA SK]', '[ CLS ]', '[SEP', 'SEP]', '[CLS][SEP]', '[UNK]s'];
const CONTROL = ['\u0000', '\u0007', '\u001b[31m', '\u200b', '\u00ad', '\ufeff', '\ufffd', '\ue000', '\u0085',
  '\u000b', '\u000c', '\u001f', '\u007f', '\u200d', '\u2060', '\u061c', '\u202e', '\u0001x\u0002',
  '\udb80\udc00'];
const SPACES = [' ', '  ', '\t', '\n', '\r\n', '\u00a0', '\u2002', '\u2003', '\u2009', '\u3000', '\u2028',
  '\u2029', '\u202f', '\u205f', '\u1680', ' \t \n '];
const COMBINING = ['e\u0301', 'a\u0308\u0301', 'Z\u0337\u0322\u0349a\u0335l\u0338g\u0336o\u0335', 'n\u0303',
  'A\u030a', 'i\u0307', '\u0301alone', 'x\u20dd', 'q\u0323\u0307', 'ɡ\u0300', '\u0915\u093f', 'Ü\u0304'];

function longWord() {
  switch (int(9)) {
    case 0: return 'a'.repeat(99 + int(4));                      // around the 100-char limit
    case 1: return 'supercalifragilistic'.repeat(5 + int(2));      // 100 or 120
    case 2: return '1234567890'.repeat(10 + int(2));
    case 3: return 'é'.repeat(99 + int(3));                        // limit counted after NFD+strip
    case 4: return 'x'.repeat(int(300) + 101);
    case 5: return 'ab'.repeat(50) + (chance(0.5) ? 'c' : '');
    case 6: return 'Ñ'.repeat(60);
    case 7: return '漢'.repeat(120);                                // CJK: split, never "long"
    default: return `${pick(COMMON)}${'-'.repeat(int(3))}`.repeat(15 + int(20));
  }
}

function randomCase(word) {
  switch (int(6)) {
    case 0: return word.toUpperCase();
    case 1: return word.charAt(0).toUpperCase() + word.slice(1);
    case 2: return Array.from(word, (c) => (chance(0.5) ? c.toUpperCase() : c)).join('');
    default: return word;
  }
}

function fragment() {
  const r = rand();
  if (r < 0.45) return randomCase(pick(COMMON));
  if (r < 0.53) return randomCase(pick(MEDICAL));
  if (r < 0.61) return pick(ACCENTED);
  if (r < 0.67) return pick(SCRIPTS);
  if (r < 0.71) return pick(EMOJI);
  if (r < 0.78) return pick(PUNCT);
  if (r < 0.83) return pick(NUMBERS);
  if (r < 0.86) return pick(URLS);
  if (r < 0.885) return pick(SPECIAL_TEXT);
  if (r < 0.91) return pick(CONTROL) + (chance(0.5) ? pick(COMMON) : '');
  if (r < 0.935) return pick(COMBINING);
  if (r < 0.94) return longWord();
  return pick(COMMON) + pick(PUNCT) + pick(COMMON);
}

const SENTENCE_TEMPLATES = [
  () => `The patient was given ${int(900) + 10}mg of ${pick(MEDICAL)} for ${pick(MEDICAL)}.`,
  () => `${randomCase(pick(COMMON))} ${pick(COMMON)} ${pick(COMMON)}, ${pick(COMMON)} ${pick(COMMON)}${pick(['.', '!', '?', '...'])}`,
  () => `I can't believe it's ${pick(ACCENTED)}! Don't you think ${pick(COMMON)}'s ${pick(COMMON)}?`,
  () => `Visit ${pick(URLS)} or email ${pick(URLS)} before ${pick(NUMBERS)}.`,
  () => `${pick(SCRIPTS)}${pick(PUNCT)}${pick(SCRIPTS)} ${pick(EMOJI)}`,
  () => `"${randomCase(pick(COMMON))}," she said — ${pick(PUNCT)} ${pick(COMMON)} ${pick(EMOJI)}`,
  () => `[CLS] ${pick(COMMON)} [SEP] ${pick(COMMON)} [MASK] ${pick(COMMON)}.`,
  () => `Q: What is ${pick(MEDICAL)}? A: ${pick(COMMON)} ${pick(COMMON)} ${pick(MEDICAL)}.`,
  () => `${pick(NUMBERS)} ${pick(NUMBERS)} ${pick(NUMBERS)}`,
  () => `${pick(ACCENTED)} ${pick(ACCENTED)} ${pick(ACCENTED)}`,
];

function sentence() {
  const r = rand();
  if (r < 0.02) return '';
  if (r < 0.04) return Array.from({ length: 1 + int(4) }, () => pick(SPACES)).join('');
  if (r < 0.06) return pick(CONTROL) + pick(SPACES) + pick(CONTROL);
  if (r < 0.30) return pick(SENTENCE_TEMPLATES)();
  const n = 1 + int(r < 0.92 ? 14 : 40);
  let out = '';
  for (let i = 0; i < n; ++i) {
    if (i > 0) out += chance(0.8) ? ' ' : chance(0.5) ? '' : pick(SPACES);
    out += fragment();
  }
  return out;
}

// ---------------------------------------------------------------------------

function assertEqual(got, want, what) {
  if (JSON.stringify(got) !== JSON.stringify(want)) {
    throw new Error(`self-check failed for ${what}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
  }
}

async function main() {
  const js = await loadTokenizersJs();
  js.BertNormalizer.prototype.normalize = rustBertNormalize;
  const vocab = readVocab(VOCAB);
  const tokenizerJson = bertUncasedTokenizerJson(vocab);
  const tok = new js.Tokenizer(tokenizerJson, {});
  const CLS = vocab['[CLS]'];
  const SEP = vocab['[SEP]'];

  const encodeIds = (text) => tok.encode(text, { add_special_tokens: false }).ids;
  const encodeTokens = (text) => tok.encode(text, { add_special_tokens: false }).tokens;

  // Well-known bert-base-uncased encodings, and the Rust-vs-JS overrides.
  assertEqual(tok.encode('Hello, world!').ids, [101, 7592, 1010, 2088, 999, 102], 'hello world');
  assertEqual(encodeIds('ΟΔΟΣ'), encodeIds('οδοσ'), 'per-char lowercase (no final sigma)');
  assertEqual(encodeIds('a𠀀b').length, 3, 'astral CJK isolated');
  assertEqual(truncateLongestFirst([1, 2, 3, 4], [5, 6, 7, 8, 9, 10, 11, 12], 7), [[1, 2, 3], [5, 6, 7, 8]],
              'longest-first (medium, long)');
  assertEqual(truncateLongestFirst([1, 2, 3, 4, 5, 6, 7, 8], [9, 10], 7), [[1, 2, 3, 4, 5], [9, 10]],
              'longest-first (long, short)');
  // Both over max_length 10 (budget 7): counted as 10 and 10, a tie, so b
  // gets the odd token although a is longer.
  assertEqual(countedLength(encodeTokens('a '.repeat(12)), 10), 10, 'counted length, one-piece words');
  assertEqual(countedLength(['x', 'y', 'to', '##ken', '##ize'], 3), 5, 'counted length ends on a word');
  assertEqual(truncateLongestFirst([...Array(12).keys()], [...Array(11).keys()], 7, [10, 10]),
              [[0, 1, 2], [0, 1, 2, 3]], 'longest-first (both over max_length)');

  const corpus = [];
  const N_SINGLE = 7600;
  const N_PAIR = 2600;
  for (let i = 0; i < N_SINGLE; ++i) corpus.push({ a: sentence() });
  for (let i = 0; i < N_PAIR; ++i) corpus.push({ a: sentence(), b: sentence() });
  // Interleave pairs with singles deterministically so both appear throughout.
  for (let i = corpus.length - 1; i > 0; --i) {
    const j = int(i + 1);
    [corpus[i], corpus[j]] = [corpus[j], corpus[i]];
  }

  const corpusLines = [];
  const goldenLines = [];
  const truncatedLines = [];
  corpus.forEach((entry, index) => {
    corpusLines.push(JSON.stringify(entry));
    const a = encodeIds(entry.a);
    const b = 'b' in entry ? encodeIds(entry.b) : null;
    const ids = b === null ? [CLS, ...a, SEP] : [CLS, ...a, SEP, ...b, SEP];
    // Cross-check the template against the library's own post-processor. (It
    // treats an empty pair text as "no pair"; Rust keeps the pair and emits
    // [CLS] A [SEP] [SEP], which is what `ids` holds.)
    if (b === null || entry.b !== '') {
      const full = tok.encode(entry.a, b === null ? {} : { text_pair: entry.b });
      assertEqual(full.ids, ids, `template of entry ${index}`);
    }
    const types = (ta, tb) => (tb === null ? '' : `\t${'0'.repeat(ta.length + 2)}${'1'.repeat(tb.length + 1)}`);
    goldenLines.push(ids.join(' ') + types(a, b));
    // Truncated variants: every pair, and every third single, at a small max_length
    // (including the degenerate limits that leave only the special tokens).
    if (b !== null || index % 3 === 0) {
      const specials = b === null ? 2 : 3;
      const maxLength = specials + (index % 11 === 0 ? int(2) : int(40));
      const counted = b === null ? undefined
        : [countedLength(encodeTokens(entry.a), maxLength), countedLength(encodeTokens(entry.b), maxLength)];
      const [ta, tb] = truncateLongestFirst(a, b, maxLength - specials, counted);
      const tids = tb === null ? [CLS, ...ta, SEP] : [CLS, ...ta, SEP, ...tb, SEP];
      truncatedLines.push(`${index}\t${maxLength}\t${tids.join(' ')}${types(ta, tb)}`);
    }
  });

  fs.mkdirSync(OUT_DIR, { recursive: true });
  fs.writeFileSync(path.join(OUT_DIR, 'corpus.jsonl'), corpusLines.join('\n') + '\n');
  fs.writeFileSync(path.join(OUT_DIR, 'goldens.txt'), goldenLines.join('\n') + '\n');
  fs.writeFileSync(path.join(OUT_DIR, 'goldens_truncated.txt'), truncatedLines.join('\n') + '\n');
  console.error(`[goldens] ${corpus.length} entries (${N_PAIR} pairs), ${truncatedLines.length} truncated ` +
                `goldens written to ${path.relative(ROOT, OUT_DIR)}/`);
}

// Compares the committed goldens with the Rust crate (npm `tokenizers`).
async function checkRust() {
  const dir = path.join(ROOT, '.deps/node-tokenizers-rust');
  const entry = path.join(dir, 'node_modules/tokenizers/index.js');
  if (!fs.existsSync(entry)) {
    fs.mkdirSync(dir, { recursive: true });
    execFileSync('npm', ['install', '--ignore-scripts', '--no-save', '--prefix', dir, 'tokenizers@0.23.2'],
                 { stdio: 'inherit' });
  }
  const { createRequire } = await import('node:module');
  const { Tokenizer } = createRequire(entry)(entry);
  const vocab = readVocab(VOCAB);
  const tok = Tokenizer.fromString(JSON.stringify(bertUncasedTokenizerJson(vocab)));
  const read = (name) => fs.readFileSync(path.join(OUT_DIR, name), 'utf8').replace(/\n$/, '').split('\n');
  const corpus = read('corpus.jsonl').map((line) => JSON.parse(line));
  const encode = async (e) => {
    const r = await tok.encode(e.a, 'b' in e ? e.b : null);
    return r.getIds().join(' ') + ('b' in e ? `\t${r.getTypeIds().join('')}` : '');
  };
  let bad = 0;
  const goldens = read('goldens.txt');
  tok.disableTruncation();
  for (let i = 0; i < corpus.length; ++i) {
    const got = await encode(corpus[i]);
    if (got !== goldens[i] && ++bad <= 10) console.log(`entry ${i}: rust ${got}\n      golden ${goldens[i]}`);
  }
  console.log(`goldens.txt: ${bad} of ${corpus.length} differ from Rust tokenizers`);
  bad = 0;
  const truncated = read('goldens_truncated.txt');
  for (const line of truncated) {
    const [index, maxLength, ...rest] = line.split('\t');
    tok.setTruncation(Number(maxLength));
    const got = await encode(corpus[Number(index)]);
    if (got !== rest.join('\t') && ++bad <= 10) {
      console.log(`entry ${index} max_length ${maxLength}: rust ${got}\n      golden ${rest.join('\t')}`);
    }
  }
  console.log(`goldens_truncated.txt: ${bad} of ${truncated.length} differ from Rust tokenizers`);
}

if (process.argv.includes('--check-rust')) {
  await checkRust();
} else {
  await main();
}
