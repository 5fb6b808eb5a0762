// SPDX-License-Identifier: Apache-2.0
// Drives Debian's chromium, headless, through the DevTools protocol (Node's
// own WebSocket client; no npm package) against a running ortserve's
// console, and prints what it saw as one JSON object. console_test.cc starts
// the server, runs this, and makes the assertions.
//
//   node --experimental-websocket console_browser.mjs --chromium /usr/bin/chromium \
//        --base http://127.0.0.1:PORT --traffic-model iris_classifier --unload-model string_length \
//        [--screenshots DIR] [--profile DIR]
//
// Steps: open /console; wait for the models; read the traffic model's
// requests/s plot; send inferences; wait for the plot to show them; click
// the unload button of --unload-model, confirm, and wait for the page to
// show the model UNAVAILABLE. Console errors, uncaught exceptions and
// failed loads are collected throughout; the cumulative layout shift is
// measured after the first render.
import {spawn} from 'node:child_process';
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
const base = args.base;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const result = {errors: [], steps: []};
const step = (name) => { result.steps.push(name); };
let chromium = null;  // Killed on every way out, with every process it started.

function killGroup(signal) {
  if (chromium === null) return;
  try {
    process.kill(-chromium.pid, signal);
  } catch {
    // The group is gone already.
  }
}

async function main() {
  const profile = args.profile || mkdtempSync(join(tmpdir(), 'ortserve-chromium-'));
  chromium = spawn(args.chromium, [
    '--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run',
    '--no-default-browser-check', '--disable-extensions', '--disable-background-networking', '--hide-scrollbars',
    '--remote-debugging-port=0', `--user-data-dir=${profile}`, '--window-size=1280,1800', 'about:blank',
  ], {stdio: ['ignore', 'ignore', 'pipe'], detached: true});  // Its own process group: killed whole.
  let stderr = '';
  const wsUrl = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('chromium printed no DevTools address:\n' + stderr)), 30000);
    chromium.stderr.on('data', (chunk) => {
      stderr += chunk.toString();
      const m = stderr.match(/DevTools listening on (ws:\/\/\S+)/);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
    chromium.on('exit', (code) => reject(new Error(`chromium exited (${code}):\n${stderr}`)));
  });
  step('chromium started');

  const ws = new WebSocket(wsUrl);
  await new Promise((resolve, reject) => { ws.onopen = resolve; ws.onerror = () => reject(new Error('DevTools connection failed')); });
  let nextId = 1;
  const pending = new Map();
  const listeners = [];
  ws.onmessage = (event) => {
    const msg = JSON.parse(event.data);
    if (msg.id && pending.has(msg.id)) {
      const {resolve, reject} = pending.get(msg.id);
      pending.delete(msg.id);
      if (msg.error) reject(new Error(JSON.stringify(msg.error))); else resolve(msg.result);
    } else if (msg.method) {
      for (const l of listeners) l(msg);
    }
  };
  const send = (method, params = {}, sessionId) => new Promise((resolve, reject) => {
    const id = nextId++;
    pending.set(id, {resolve, reject});
    ws.send(JSON.stringify({id, method, params, sessionId}));
  });

  const {targetId} = await send('Target.createTarget', {url: 'about:blank'});
  const {sessionId} = await send('Target.attachToTarget', {targetId, flatten: true});
  const page = (method, params) => send(method, params, sessionId);
  let loaded = false;
  listeners.push((msg) => {
    if (msg.sessionId !== sessionId) return;
    if (msg.method === 'Runtime.consoleAPICalled' && (msg.params.type === 'error' || msg.params.type === 'assert')) {
      result.errors.push('console.' + msg.params.type + ': ' + msg.params.args.map((a) => a.value ?? a.description).join(' '));
    } else if (msg.method === 'Runtime.exceptionThrown') {
      const d = msg.params.exceptionDetails;
      result.errors.push('exception: ' + (d.exception?.description || d.text));
    } else if (msg.method === 'Log.entryAdded' && msg.params.entry.level === 'error') {
      result.errors.push('log: ' + msg.params.entry.text + (msg.params.entry.url ? ' ' + msg.params.entry.url : ''));
    } else if (msg.method === 'Page.loadEventFired') {
      loaded = true;
    }
  });
  await page('Runtime.enable');
  await page('Log.enable');
  await page('Page.enable');
  // Layout shifts, counted by the browser's own observer.
  await page('Page.addScriptToEvaluateOnNewDocument', {source: `
    window.__cls = 0;
    new PerformanceObserver((list) => { for (const e of list.getEntries()) if (!e.hadRecentInput) window.__cls += e.value; })
        .observe({type: 'layout-shift', buffered: true});`});
  const evaluate = async (expression) => {
    const r = await page('Runtime.evaluate', {expression, returnByValue: true, awaitPromise: true});
    if (r.exceptionDetails) throw new Error('evaluate failed: ' + expression + ': ' + JSON.stringify(r.exceptionDetails));
    return r.result.value;
  };
  const waitFor = async (what, expression, seconds) => {
    const end = Date.now() + seconds * 1000;
    let value;
    while (Date.now() < end) {
      value = await evaluate(expression);
      if (value) return value;
      await sleep(100);
    }
    // What the page had reported so far says why (an exception in a handler).
    throw new Error(`timed out waiting for ${what} (${expression}): last ${JSON.stringify(value)}; ` +
                    `page errors: ${JSON.stringify(result.errors)}`);
  };

  await page('Page.navigate', {url: base + '/console'});
  const loadEnd = Date.now() + 20000;
  while (!loaded && Date.now() < loadEnd) await sleep(50);
  if (!loaded) throw new Error('the page did not load');
  step('page loaded');

  if (args.credential) {
    // Authentication on: the page asks for a credential before it shows anything.
    await waitFor('the credential button', `!document.getElementById('sign-in').hidden`, 20);
    result.bannerBeforeSignIn = await evaluate(`document.getElementById('banner').textContent`);
    result.modelsBeforeSignIn = await evaluate(`document.querySelectorAll('#models article').length`);
    await evaluate(`document.getElementById('sign-in').click()`);
    await waitFor('the credential dialog', `document.getElementById('credential').open`, 5);
    await evaluate(`document.getElementById('credential-value').value = ${JSON.stringify(args.credential)};
                    document.querySelector('#credential button[data-answer="ok"]').click()`);
    step('signed in');
  }
  await waitFor('the models', `document.querySelectorAll('#models article').length > 0`, 20);
  result.models = await evaluate(`[...document.querySelectorAll('#models article')].map((a) => a.dataset.model)`);
  result.title = await evaluate('document.title');
  result.unloadButtons = await evaluate(`[...document.querySelectorAll('#models .model-unload')].filter((b) => !b.hidden).length`);
  result.logControlShown = await evaluate(`!document.getElementById('log-control').hidden`);
  if (args.credential) {
    result.errors = result.errors.filter((e) => !e.includes('401'));  // The expected refusal before signing in.
    return finish();
  }
  const chart = `document.querySelector('article[data-model="${args['traffic-model']}"] figure.c-rps')`;
  await waitFor('the first plot points', `Number(${chart}?.dataset.points || 0) >= 2`, 20);
  result.rpsMaxBefore = Number(await evaluate(`${chart}.dataset.max`));
  result.pointsBefore = Number(await evaluate(`${chart}.dataset.points`));
  await sleep(1500);  // A refresh or two after the first render, then count shifts from here.
  result.clsAfterFirstRender = await evaluate('window.__cls');
  step('models shown');

  // Traffic: 3 seconds of inferences to the traffic model.
  const body = JSON.stringify({inputs: [{name: 'input', shape: [1, 4], datatype: 'FP32', data: [5.1, 3.5, 1.4, 0.2]}]});
  let sent = 0, ok = 0;
  const trafficEnd = Date.now() + 3000;
  while (Date.now() < trafficEnd) {
    const batch = [];
    for (let i = 0; i < 8; ++i) {
      batch.push(fetch(`${base}/v2/models/${args['traffic-model']}/infer`, {method: 'POST', body,
                                                                          headers: {'Content-Type': 'application/json'}})
          .then((r) => { if (r.ok) ++ok; return r.arrayBuffer(); }));
    }
    sent += batch.length;
    await Promise.all(batch);
    await sleep(20);
  }
  result.trafficSent = sent;
  result.trafficOk = ok;
  step('traffic sent');
  await waitFor('the plot to show the traffic', `Number(${chart}.dataset.max) > 0`, 20);
  result.rpsMaxAfter = Number(await evaluate(`${chart}.dataset.max`));
  result.pointsAfter = Number(await evaluate(`${chart}.dataset.points`));
  result.latencyPoints = Number(await evaluate(
      `document.querySelector('article[data-model="${args['traffic-model']}"] figure.c-lat').dataset.points`));
  result.clsAfterTraffic = await evaluate('window.__cls');
  step('plot updated');

  if (args.screenshots) {
    const shot = async (file, width, dark, scrollTo) => {
      await page('Emulation.setDeviceMetricsOverride', {width, height: width < 600 ? 844 : 1000,
                                                        deviceScaleFactor: width < 600 ? 2 : 1, mobile: width < 600});
      await page('Emulation.setEmulatedMedia', {features: [{name: 'prefers-color-scheme', value: dark ? 'dark' : 'light'}]});
      await evaluate(scrollTo ? `document.querySelector('${scrollTo}').scrollIntoView(); window.scrollBy(0, -64)`
                              : 'window.scrollTo(0, 0)');
      await sleep(1500);
      const {data} = await page('Page.captureScreenshot', {format: 'png', captureBeyondViewport: width < 600 ? false : true});
      writeFileSync(join(args.screenshots, file), Buffer.from(data, 'base64'));
    };
    // Keep traffic flowing while the pictures are taken.
    let flowing = true;
    const flow = (async () => {
      while (flowing) {
        await Promise.all([0, 1, 2, 3].map(() => fetch(`${base}/v2/models/${args['traffic-model']}/infer`,
            {method: 'POST', body, headers: {'Content-Type': 'application/json'}}).then((r) => r.arrayBuffer())));
        await sleep(10);
      }
    })();
    await shot('console-desktop-light.png', 1280, false);
    await shot('console-desktop-dark.png', 1280, true);
    await shot('console-phone-dark.png', 390, true);
    await shot('console-phone-light.png', 390, false, `article[data-model="${args['traffic-model']}"]`);
    flowing = false;
    await flow;
    await page('Emulation.clearDeviceMetricsOverride');
    await page('Emulation.setEmulatedMedia', {features: []});
    step('screenshots taken');
  }

  // The log level through the page's control and confirmation dialog. Each
  // confirmation opens in the click's own handler; the waits are long for a
  // renderer starved by a busy machine (5 s timed out once under ctest -j2).
  await waitFor('the log-level control', `!document.getElementById('log-control').hidden`, 10);
  await evaluate(`document.getElementById('log-level').value = 'debug'`);
  await evaluate(`document.getElementById('log-apply').click()`);
  await waitFor('the confirmation', `document.getElementById('confirm').open`, 20);
  await evaluate(`document.getElementById('confirm-ok').click()`);
  // The server's own answer (polled: the page posts after the click).
  const logEnd = Date.now() + 10000;
  do {
    result.logSettings = await (await fetch(`${base}/v2/logging`)).json();
    if (result.logSettings.log_verbose_level === 1) break;
    await sleep(100);
  } while (Date.now() < logEnd);
  step('log level set');

  // Unload through the page's own button and confirmation dialog.
  const card = `document.querySelector('article[data-model="${args['unload-model']}"]')`;
  result.stateBefore = await evaluate(`${card}?.dataset.state`);
  result.unloadButtonShown = await evaluate(`!${card}.querySelector('.model-unload').hidden`);
  await evaluate(`${card}.querySelector('.model-unload').click()`);
  await waitFor('the confirmation', `document.getElementById('confirm').open`, 20);
  result.confirmText = await evaluate(`document.getElementById('confirm-text').textContent`);
  await evaluate(`document.getElementById('confirm-ok').click()`);
  await waitFor('the model to show unloaded', `${card}.dataset.state === 'UNAVAILABLE'`, 20);
  result.stateAfter = await evaluate(`${card}.dataset.state`);
  result.loadButtonShown = await evaluate(`!${card}.querySelector('.model-load').hidden`);
  step('model unloaded');
  // And loaded again through its load button.
  await evaluate(`${card}.querySelector('.model-load').click()`);
  await waitFor('the confirmation', `document.getElementById('confirm').open`, 20);
  await evaluate(`document.getElementById('confirm-ok').click()`);
  await waitFor('the model to show loaded', `${card}.dataset.state === 'READY'`, 30);
  result.stateReloaded = await evaluate(`${card}.dataset.state`);
  step('model loaded');
  await sleep(500);

  await finish();

  async function finish() {
    ws.close();
    const exited = new Promise((r) => chromium.once('exit', r));
    killGroup('SIGTERM');
    await exited;
    killGroup('SIGKILL');  // Helpers still writing to the profile would race its removal.
    // Retried: a helper process may still be letting go of its files.
    if (!args.profile) rmSync(profile, {recursive: true, force: true, maxRetries: 20, retryDelay: 50});
  }
}

main().then(() => {
  process.stdout.write(JSON.stringify(result) + '\n');
  process.exit(0);
}, (e) => {
  result.failure = String(e && e.stack || e);
  killGroup('SIGKILL');
  process.stdout.write(JSON.stringify(result) + '\n');
  process.exit(1);
});
