// Real-browser end-to-end test of the demo page: Debian's Chromium, driven
// by playwright-core, opens a master page and a viewer page; both get their
// signaling URL from the kvssign vending service and connect through the
// emulator; a data-channel message goes each way, the viewer plays the
// master's (fake) camera, a screenshot of each page is saved, and every
// request, response and WebSocket frame the browser saw is scanned for AWS
// credentials.
//
// scripts/browser-test.sh starts the servers inside a network namespace
// with only loopback and sets the environment below; run it, not this file.
//
//   KVSSIGN_WEB_URL      the page, e.g. http://127.0.0.1:8080/
//   KVSSIGN_WEB_TOKEN    a vending bearer token allowed MASTER and VIEWER
//   KVSSIGN_WEB_CHANNEL  the channel (created beforehand)
//   KVSSIGN_SECRETS      newline-separated strings that must never reach the
//                        browser in any form: secret access keys, the
//                        long-term access key id, long-term session tokens
//   KVSSIGN_ARTIFACTS    where screenshots and the traffic log go
//   KVSSIGN_EMULATOR_URL the emulator, for its admin endpoints (/_emulator/)
//   CHROMIUM             the browser binary (default /usr/bin/chromium)

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

const env = (k, def) => {
  const v = process.env[k] ?? def;
  if (v === undefined || v === '') throw new Error(`${k} is not set: run scripts/browser-test.sh`);
  return v;
};
const pageURL = env('KVSSIGN_WEB_URL');
const token = env('KVSSIGN_WEB_TOKEN');
const channel = env('KVSSIGN_WEB_CHANNEL');
const secrets = env('KVSSIGN_SECRETS').split('\n').map((s) => s.trim()).filter(Boolean);
const artifacts = env('KVSSIGN_ARTIFACTS', 'artifacts/browser');
const chromiumPath = env('CHROMIUM', '/usr/bin/chromium');
const emulatorURL = env('KVSSIGN_EMULATOR_URL');
const T = 30_000; // per step: generous for a 2-core machine shared with others

let context, userDataDir, master, viewer;
const traffic = []; // {page, kind, url, text}

function record(name, page) {
  page.on('console', (m) => { if (m.type() === 'error') console.log(`  [${name} console] ${m.text()}`); });
  page.on('pageerror', (e) => console.log(`  [${name} pageerror] ${e.message}`));
  page.on('request', (r) => {
    traffic.push({ page: name, kind: 'request', url: r.url(), text: JSON.stringify(r.headers()) + '\n' + (r.postData() || '') });
  });
  page.on('response', async (r) => {
    let body = '';
    try { body = (await r.body()).toString('utf8'); } catch { /* redirects and aborted loads have none */ }
    traffic.push({ page: name, kind: 'response', url: r.url(), type: r.headers()['content-type'] || '', text: JSON.stringify(r.headers()) + '\n' + body });
  });
  page.on('websocket', (ws) => {
    traffic.push({ page: name, kind: 'websocket', url: ws.url(), text: '' });
    ws.on('framesent', (f) => traffic.push({ page: name, kind: 'ws-sent', url: ws.url(), text: decodeFrame(f.payload) }));
    ws.on('framereceived', (f) => traffic.push({ page: name, kind: 'ws-received', url: ws.url(), text: decodeFrame(f.payload) }));
  });
}

// decodeFrame returns a frame's text plus, for signaling messages, the
// decoded base64 payload, so a secret hidden in an SDP would be found too.
function decodeFrame(payload) {
  const text = typeof payload === 'string' ? payload : Buffer.from(payload).toString('utf8');
  try {
    const m = JSON.parse(text);
    if (m.messagePayload) return text + '\n' + Buffer.from(m.messagePayload, 'base64').toString('utf8');
  } catch { /* not JSON */ }
  return text;
}

async function openPage(name, fragment) {
  const page = await context.newPage();
  record(name, page);
  await page.goto(`${pageURL}#${fragment}`);
  return page;
}

async function waitState(page, id, state) {
  try {
    await page.waitForSelector(`#${id}[data-state="${state}"]`, { timeout: T });
  } catch (err) {
    const got = await page.$eval(`#${id}`, (el) => `${el.dataset.state} (${el.textContent})`).catch(() => '?');
    const errors = await page.$eval('#error', (el) => el.textContent).catch(() => '');
    const log = await page.$$eval('#log li', (els) => els.map((e) => e.textContent).join('\n    ')).catch(() => '');
    throw new Error(`#${id}: want ${state}, have ${got}; page error: ${errors || 'none'}\n  page log:\n    ${log}`);
  }
}

async function sendAndExpect(from, to, text) {
  await from.fill('#message', text);
  await from.click('#send');
  await to.waitForFunction((t) => [...document.querySelectorAll('#messages li.in')].some((li) => li.textContent.endsWith(`: ${t}`)), text, { timeout: T });
}

before(async () => {
  // A new empty profile for every run, as the machine notes ask; the two
  // pages share it (one persistent context) but nothing else.
  userDataDir = await mkdtemp(path.join(tmpdir(), 'kvssign-chromium-'));
  await mkdir(artifacts, { recursive: true });
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: chromiumPath,
    headless: true,
    viewport: { width: 1100, height: 1000 },
    permissions: ['camera'],
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--allow-loopback-in-peer-connection',
      '--disable-features=WebRtcHideLocalIpsWithMdns',
      '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
    ],
  });
});

after(async () => {
  await context?.close();
  if (userDataDir) await rm(userDataDir, { recursive: true, force: true });
  // The traffic log holds signed URLs, which expire within five minutes of
  // the test; it is kept for debugging a failure, under artifacts/.
  await writeFile(path.join(artifacts, 'traffic.json'), JSON.stringify(traffic, null, 1)).catch(() => {});
});

test('master and viewer connect through the vending service and the emulator', async (t) => {
  await t.test('master opens signaling with a vended URL', async () => {
    master = await openPage('master', new URLSearchParams({ role: 'MASTER', channel, token, autoconnect: '1' }));
    await waitState(master, 'st-vend', 'ok');
    await waitState(master, 'st-signaling', 'open');
  });

  await t.test('viewer opens signaling and the peer connection connects', async () => {
    viewer = await openPage('viewer', new URLSearchParams({ role: 'VIEWER', channel, token, autoconnect: '1' }));
    await waitState(viewer, 'st-signaling', 'open');
    await waitState(viewer, 'st-pc', 'connected');
    await waitState(master, 'st-pc', 'connected');
    await waitState(viewer, 'st-dc', 'open');
    await waitState(master, 'st-dc', 'open');
  });

  await t.test('a data-channel message goes each way', async () => {
    await sendAndExpect(viewer, master, 'hello master, from the viewer');
    await sendAndExpect(master, viewer, 'hello viewer, from the master');
  });

  await t.test("the viewer plays the master's camera", async () => {
    await waitState(viewer, 'st-video', 'playing');
    await waitState(master, 'st-video', 'playing'); // the viewer sends its fake camera too
  });

  await t.test('the pages show no error, and screenshots are saved', async () => {
    for (const [name, page] of [['master', master], ['viewer', viewer]]) {
      const errs = await page.evaluate(() => window.kvsDemo.errors);
      assert.deepEqual(errs, [], `${name} page errors`);
      const file = path.join(artifacts, `${name}.png`);
      await page.screenshot({ path: file, fullPage: true });
      console.log(`  screenshot: ${file}`);
    }
  });

  await t.test('when the service closes signaling, the page says so and the peers stay connected', async () => {
    const res = await fetch(`${emulatorURL}/_emulator/disconnect?channel=${channel}&role=VIEWER&code=1001&reason=test`, { method: 'POST' });
    assert.equal(res.status, 200, 'emulator admin disconnect');
    assert.deepEqual(await res.json(), { connections: 1 });
    await waitState(viewer, 'st-signaling', 'closed-error');
    assert.equal(await viewer.$eval('#st-pc', (el) => el.dataset.state), 'connected');
    await sendAndExpect(viewer, master, 'still here without signaling');
  });

  await t.test('Connect again gets a fresh URL and a new peer connection', async () => {
    const before = traffic.filter((x) => x.page === 'viewer' && x.kind === 'websocket').length;
    await viewer.click('#connect');
    await waitState(viewer, 'st-signaling', 'open');
    await waitState(viewer, 'st-pc', 'connected');
    await waitState(viewer, 'st-dc', 'open');
    await waitState(master, 'st-dc', 'open');
    const sockets = traffic.filter((x) => x.page === 'viewer' && x.kind === 'websocket').map((x) => x.url);
    assert.equal(sockets.length, before + 1, 'one new signaling connection');
    assert.notEqual(sockets.at(-1), sockets.at(-2), 'with a newly vended URL');
    await sendAndExpect(viewer, master, 'back again, from the viewer');
    await sendAndExpect(master, viewer, 'welcome back, from the master');
  });
});

test('a refused token shows the vending service\'s answer plainly', async () => {
  const page = await openPage('refused', new URLSearchParams({ role: 'VIEWER', channel, token: 'not-a-valid-token', autoconnect: '1' }));
  try {
    await waitState(page, 'st-vend', 'error');
    const text = await page.$eval('#error', (el) => (el.hidden ? '' : el.textContent));
    assert.match(text, /vending service said 401/, 'the error names the status');
    assert.equal(await page.$eval('#st-signaling', (el) => el.dataset.state), 'closed', 'no signaling attempted');
    await page.screenshot({ path: path.join(artifacts, 'refused.png'), fullPage: true });
  } finally {
    await page.close();
  }
});

// What may reach a browser, and what may not. The vending server signs
// with temporary credentials from STS AssumeRole scoped to one channel
// (scopedCredentials in the test config), so the URL it vends carries a
// temporary access key id (ASIA…) in X-Amz-Credential and its session token
// in X-Amz-Security-Token: KVS requires the token inside the signed URL,
// exactly as AWS's own JS SDK puts it there. Neither signs anything without
// the temporary secret key, which never leaves the server. What must never
// appear anywhere the browser can see — page, scripts, API answers, headers,
// WebSocket URLs and frames, decoded signaling payloads — is any secret key
// and any long-term credential (the server's own access key id, secret and,
// if it has one, session token): KVSSIGN_SECRETS lists them.
test('no AWS secret or long-term credential reaches the browser', async (t) => {
  assert.ok(traffic.length > 0, 'traffic was captured');
  const pages = [master, viewer].filter(Boolean);
  const html = await Promise.all(pages.map((p) => p.content()));
  const haystack = [...traffic.map((x) => `${x.url}\n${x.text}`), ...html].join('\n');

  await t.test('none of the server-side secrets appear, in any encoding', () => {
    assert.ok(secrets.length > 0, 'KVSSIGN_SECRETS names at least one secret');
    for (const s of secrets) {
      for (const [how, form] of encodings(s)) {
        assert.ok(!haystack.includes(form), `a server-side credential (${s.slice(0, 4)}…, ${how}) reached the browser`);
      }
    }
  });

  await t.test('no long-term access key id appears, and the vended URLs use temporary ones', () => {
    const longTerm = haystack.match(/\bAKIA[0-9A-Z]{16}\b/g) || [];
    assert.deepEqual([...new Set(longTerm)], [], 'long-term access key ids in browser traffic');
    const ws = traffic.filter((x) => x.kind === 'websocket');
    assert.ok(ws.length >= 2, 'both pages opened a signaling WebSocket');
    for (const x of ws) {
      const q = new URL(x.url).searchParams;
      assert.match(q.get('X-Amz-Credential') || '', /^ASIA[0-9A-Z]{16}\//, 'the signaling URL is signed with temporary credentials');
      assert.ok(q.get('X-Amz-Security-Token'), 'temporary credentials come with their session token inside the signed URL');
      assert.ok(Number(q.get('X-Amz-Expires')) <= 300, 'the URL lives at most 300 s');
    }
  });

  // The page's script names secretAccessKey (the SDK's own signer, which
  // the page does not use), so this looks at data only: API answers and
  // signaling frames.
  await t.test('no API answer or signaling frame has a secret key field', () => {
    const data = traffic.filter((x) => x.kind === 'ws-received' || (x.kind === 'response' && (/json/.test(x.type) || x.url.includes('/v1/'))));
    assert.ok(data.some((x) => x.kind === 'response'), 'the vending answers were captured');
    const bad = data.filter((x) => /secret_?access_?key|"secretKey"|aws_secret|sessionToken"/i.test(x.text));
    assert.deepEqual(bad.map((x) => x.url), [], 'responses with a secret key field');
  });
});

// encodings lists the forms in which s could travel: as is, URL-encoded,
// JSON-escaped and base64 (at each of the three alignments, so a secret
// embedded in a longer base64 string is found too).
function encodings(s) {
  const out = [['raw', s], ['url-encoded', encodeURIComponent(s)], ['json', JSON.stringify(s).slice(1, -1)]];
  for (let pad = 0; pad < 3; pad++) {
    const b = Buffer.from('x'.repeat(pad) + s).toString('base64');
    const skip = pad === 0 ? 0 : Math.ceil((pad * 4) / 3) + 1;
    out.push([`base64+${pad}`, b.slice(skip, b.length - 4)]);
  }
  return out.filter(([, f]) => f.length >= 8);
}
