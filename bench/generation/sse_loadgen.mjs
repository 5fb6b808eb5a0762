#!/usr/bin/env node
// SPDX-License-Identifier: Apache-2.0
// sse_loadgen: the load generator of the generation benchmarks. Sends
// streamed OpenAI completions (POST /v1/completions, "stream": true,
// temperature 0, ignore_eos, usage included) to one model and reads the
// Server-Sent Events as they come, so that each request's time to first
// token (TTFT) and the gaps between its tokens (inter-token latency, ITL)
// are measured at the client.
//
//   closed loop: --concurrency C streams, each sending its next request when
//     the last ends (decode throughput at C streams);
//   open loop: --rate R requests/s with exponential gaps (Poisson arrivals);
//     TTFT is measured from each request's *due* time, so a late send counts
//     against the server (no coordinated omission).
//
// Output lengths: --max-tokens N, or --max-tokens-mix a,b,c (each request
// picks one uniformly, from a seeded generator). Only requests sent within
// [warmup, warmup + duration) count; the loop then waits up to --drain
// seconds for them to end. Tokens per second = completion tokens of the
// counted requests / the time from the window's start until the last counted
// one ended. A piece of text is one event; an event may carry more than one
// token (text held back at a split UTF-8 character), so ITL is per event and
// tokens come from the usage event; itl_request_mean_ms is each request's
// (last event - first event) / (tokens - 1), which a client that reads
// several events at once (a busy machine) does not hide.
//
// --stream false sends the same requests unstreamed ("stream": false): the
// whole completion comes in one JSON body, so tokens per second measure the
// engine without the per-token delivery of Server-Sent Events; TTFT is then
// the time to the whole answer and there are no ITL figures.
//
// The output also reports what limits the load generator itself, so that a
// run can tell a busy client from a slow server: its own CPU time over the
// run (loadgen_cpu_s, user + system, and loadgen_cpu_share, over the run's
// wall time: near 1 means the client, not the server, set the pace) and, in
// a closed loop, the time from a request's end (its last byte read) to the
// same stream's next send (next_send_gap_ms).
//
// Usage: node sse_loadgen.mjs --port 8000 --model tiny_decoder --concurrency 8 \
//          --duration 10 --warmup 2 --max-tokens 64 [--json-out f.json]
import http from 'node:http';
import fs from 'node:fs';

function parseArgs(argv) {
  const o = {
    host: '127.0.0.1', port: 8000, model: 'tiny_decoder', concurrency: 0, rate: 0, duration: 10, warmup: 2,
    drain: 30, maxTokens: '64', prompt: 'I have been feeling', seed: 1, jsonOut: '', path: '/v1/completions',
    stream: 'true',
  };
  for (let i = 2; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, '').replace(/-([a-z])/g, (_, c) => c.toUpperCase());
    if (!(key in o)) throw new Error(`unknown flag ${argv[i]}`);
    o[key] = typeof o[key] === 'number' ? Number(argv[i + 1]) : argv[i + 1];
  }
  o.lengths = String(o.maxTokens).split(',').map(Number);
  if (o.stream !== 'true' && o.stream !== 'false') throw new Error('--stream takes true or false');
  o.stream = o.stream === 'true';
  if (!(o.concurrency > 0) === !(o.rate > 0)) throw new Error('give one of --concurrency and --rate');
  return o;
}

// SplitMix-style seeded generator: the same arrivals and lengths every run.
function rng(seed) {
  let s = BigInt(seed) & 0xffffffffffffffffn;
  return () => {
    s = (s + 0x9e3779b97f4a7c15n) & 0xffffffffffffffffn;
    let z = s;
    z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & 0xffffffffffffffffn;
    z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & 0xffffffffffffffffn;
    z ^= z >> 31n;
    return Number(z >> 11n) / 2 ** 53;
  };
}

function percentile(sorted, q) {
  if (sorted.length === 0) return null;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i];
}

function summary(values) {
  const s = Float64Array.from(values).sort();
  const mean = s.length ? s.reduce((a, b) => a + b, 0) / s.length : null;
  return { count: s.length, p50: percentile(s, 0.5), p90: percentile(s, 0.9), p99: percentile(s, 0.99),
    max: s.length ? s[s.length - 1] : null, mean };
}

const now = () => Number(process.hrtime.bigint()) / 1e6;  // ms

// One streamed request; resolves with its record (never rejects).
function send(o, agent, maxTokens, due) {
  return new Promise((resolve) => {
    const rec = { due, sent: now(), first: null, end: null, events: 0, gaps: [], tokens: 0, status: 0, error: null,
      finish: null, maxTokens };
    const body = JSON.stringify(o.stream
      ? { model: o.model, prompt: o.prompt, max_tokens: maxTokens, temperature: 0, ignore_eos: true, stream: true,
        stream_options: { include_usage: true } }
      : { model: o.model, prompt: o.prompt, max_tokens: maxTokens, temperature: 0, ignore_eos: true, stream: false });
    const req = http.request({ host: o.host, port: o.port, path: o.path, method: 'POST', agent,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      rec.status = res.statusCode;
      let buf = '';
      let last = null;
      res.setEncoding('utf8');
      if (!o.stream) {
        res.on('data', (chunk) => { buf += chunk; });
        res.on('end', () => {
          rec.end = now();
          rec.first = rec.end;
          try {
            const msg = JSON.parse(buf);
            if (msg.error) rec.error = msg.error.message || 'error body';
            else {
              rec.tokens = msg.usage ? msg.usage.completion_tokens : 0;
              rec.finish = msg.choices && msg.choices[0] ? msg.choices[0].finish_reason : null;
            }
          } catch { rec.error = `bad body (status ${res.statusCode})`; }
          resolve(rec);
        });
        res.on('error', (e) => { rec.error = String(e); rec.end = now(); resolve(rec); });
        return;
      }
      res.on('data', (chunk) => {
        const t = now();
        buf += chunk;
        let k;
        while ((k = buf.indexOf('\n\n')) >= 0) {
          const event = buf.slice(0, k);
          buf = buf.slice(k + 2);
          if (!event.startsWith('data: ')) continue;
          const data = event.slice(6);
          if (data === '[DONE]') continue;
          let msg;
          try { msg = JSON.parse(data); } catch { rec.error = 'bad event'; continue; }
          if (msg.error) { rec.error = msg.error.message || 'error event'; continue; }
          if (msg.usage) rec.tokens = msg.usage.completion_tokens;
          const choice = msg.choices && msg.choices[0];
          if (!choice) continue;
          if (choice.finish_reason) rec.finish = choice.finish_reason;
          if (choice.text === undefined || choice.text === '') continue;
          rec.events += 1;
          if (rec.first === null) rec.first = t; else rec.gaps.push(t - last);
          last = t;
          rec.last = t;
        }
      });
      res.on('end', () => { rec.end = now(); resolve(rec); });
      res.on('error', (e) => { rec.error = String(e); rec.end = now(); resolve(rec); });
    });
    req.on('error', (e) => { rec.error = String(e); rec.end = now(); resolve(rec); });
    req.end(body);
  });
}

async function main() {
  const o = parseArgs(process.argv);
  const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });
  const random = rng(o.seed);
  const pick = () => o.lengths[Math.floor(random() * o.lengths.length)];
  const t0 = now();
  const windowStart = t0 + o.warmup * 1000, windowEnd = windowStart + o.duration * 1000;
  const records = [];  // counted: sent within the window
  const pending = [];
  const nextSendGaps = [];  // closed loop: a request's end to its stream's next send, within the window
  const cpu0 = process.cpuUsage();
  if (o.concurrency > 0) {
    const stream = async () => {
      let prevEnd = null;
      while (now() < windowEnd) {
        const start = now();
        if (prevEnd !== null && start >= windowStart) nextSendGaps.push(start - prevEnd);
        const rec = await send(o, agent, pick(), start);
        prevEnd = rec.end;
        if (start >= windowStart) records.push(rec);
      }
    };
    await Promise.all(Array.from({ length: o.concurrency }, stream));
  } else {
    let due = t0;
    while (true) {
      due += -Math.log(1 - random()) * 1000 / o.rate;
      if (due >= windowEnd) break;
      const wait = due - now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      const p = send(o, agent, pick(), due);
      if (due >= windowStart) pending.push(p.then((rec) => records.push(rec)));
    }
    await Promise.race([Promise.all(pending), new Promise((r) => setTimeout(r, o.drain * 1000))]);
  }
  agent.destroy();
  const cpu = process.cpuUsage(cpu0);
  const wallS = (now() - t0) / 1000;
  const ok = records.filter((r) => r.status === 200 && !r.error && r.end !== null);
  const lastEnd = ok.reduce((m, r) => Math.max(m, r.end), windowStart);
  const tokens = ok.reduce((a, r) => a + r.tokens, 0);
  const byStatus = {};
  for (const r of records) byStatus[r.error ? `error: ${r.error}` : r.status] = (byStatus[r.error ? `error: ${r.error}` : r.status] || 0) + 1;
  const out = {
    mode: o.concurrency > 0 ? 'closed' : 'open', stream: o.stream, concurrency: o.concurrency, rate: o.rate, duration_s: o.duration,
    warmup_s: o.warmup, max_tokens: o.lengths, prompt: o.prompt,
    requests: records.length, ok: ok.length, by_status: byStatus, unfinished: records.length - records.filter((r) => r.end !== null).length,
    completion_tokens: tokens,
    tokens_per_s: tokens / ((lastEnd - windowStart) / 1000),
    requests_per_s: ok.length / ((lastEnd - windowStart) / 1000),
    ttft_ms: summary(ok.map((r) => r.first - r.due)),
    itl_ms: summary(ok.flatMap((r) => r.gaps)),
    // Per request: (last event - first event) / (tokens - 1), its mean gap
    // between tokens; not hidden when the client reads several events at once.
    itl_request_mean_ms: summary(ok.filter((r) => r.tokens > 1 && r.last !== undefined)
      .map((r) => (r.last - r.first) / (r.tokens - 1))),
    e2e_ms: summary(ok.map((r) => r.end - r.due)),
    send_lag_ms: summary(records.map((r) => r.sent - r.due)),
    next_send_gap_ms: summary(nextSendGaps),
    loadgen_cpu_s: (cpu.user + cpu.system) / 1e6,
    loadgen_cpu_share: (cpu.user + cpu.system) / 1e6 / wallS,
  };
  const line = (s) => (s.count ? `p50 ${s.p50.toFixed(2)} p99 ${s.p99.toFixed(2)}` : 'n/a');
  console.log(`${out.mode} ${o.concurrency || o.rate}: ${out.ok}/${out.requests} ok, ${out.tokens_per_s.toFixed(1)} tok/s, ` +
    `TTFT ${line(out.ttft_ms)} ms, ITL ${line(out.itl_ms)} ms, statuses ${JSON.stringify(byStatus)}, ` +
    `loadgen CPU ${(100 * out.loadgen_cpu_share).toFixed(0)}%`);
  if (o.jsonOut) fs.writeFileSync(o.jsonOut, JSON.stringify(out, null, 1) + '\n');
}

main().catch((e) => { console.error(`sse_loadgen: ${e.stack || e}`); process.exit(1); });
