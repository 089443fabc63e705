// Real-browser test of the emulator against AWS's own browser clients: the
// page in src/ (AWS SDK v3 KinesisVideo clients, the KVS WebRTC SDK's
// SignalingClient and SigV4 signer) runs in Debian's Chromium, driven by
// playwright-core, served from another origin than the emulator so that
// every control-plane and GetIceServerConfig call is a CORS request with a
// preflight. Web security stays on; Chromium trusts the emulator's
// self-signed certificate through --ignore-certificate-errors-spki-list
// (its public key's hash) and nothing else.
//
// scripts/official-client-test.sh starts the emulator inside a network
// namespace with only loopback and sets the environment below; run it.
//
//   KVSSIGN_EMULATOR_URL  the emulator (https://127.0.0.1:PORT, --tls)
//   KVSSIGN_SPKI          base64 SHA-256 of the emulator certificate's key
//   KVSSIGN_CERT          the emulator's certificate (PEM), for the admin API
//   KVSSIGN_CHANNEL       a channel that exists
//   KVSSIGN_AKID, KVSSIGN_SECRET  credentials the emulator accepts
//   KVSSIGN_ARTIFACTS     where the pages' logs go
//   CHROMIUM              the browser binary (default /usr/bin/chromium)

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { get as httpsGet } from 'node:https';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const env = (k, def) => {
  const v = process.env[k] ?? def;
  if (v === undefined || v === '') throw new Error(`${k} is not set: run scripts/official-client-test.sh`);
  return v;
};
const emulatorURL = env('KVSSIGN_EMULATOR_URL');
const spki = env('KVSSIGN_SPKI');
const channelName = env('KVSSIGN_CHANNEL');
const credentials = { accessKeyId: env('KVSSIGN_AKID'), secretAccessKey: env('KVSSIGN_SECRET') };
const artifacts = env('KVSSIGN_ARTIFACTS', 'artifacts/official');
const chromiumPath = env('CHROMIUM', '/usr/bin/chromium');
const dist = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'dist');
const T = 60_000; // per step: generous for a 2-core machine shared with others

let server, pageOrigin, context, userDataDir;
const pages = [];

before(async () => {
  // The page's own origin: plain http on another port than the emulator.
  server = createServer(async (req, res) => {
    const name = new URL(req.url, 'http://x').pathname === '/' ? 'index.html' : path.basename(req.url);
    try {
      const body = await readFile(path.join(dist, name));
      res.writeHead(200, { 'content-type': name.endsWith('.js') ? 'text/javascript' : 'text/html' }).end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  pageOrigin = `http://127.0.0.1:${server.address().port}`;
  userDataDir = await mkdtemp(path.join(tmpdir(), 'kvssign-official-'));
  await mkdir(artifacts, { recursive: true });
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: chromiumPath,
    headless: true,
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--allow-loopback-in-peer-connection',
      '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
      '--disable-features=WebRtcHideLocalIpsWithMdns',
      `--ignore-certificate-errors-spki-list=${spki}`,
    ],
  });
});

after(async () => {
  for (const p of pages) {
    const text = await p.page.locator('#log').textContent().catch(() => '');
    await writeFile(path.join(artifacts, `${p.name}.log`), text).catch(() => {});
  }
  await context?.close();
  server?.close();
  if (userDataDir) await rm(userDataDir, { recursive: true, force: true });
});

async function openPage(name) {
  const page = await context.newPage();
  page.on('console', (m) => { if (m.type() === 'error') console.log(`  [${name} console] ${m.text()}`); });
  page.on('pageerror', (e) => console.log(`  [${name} pageerror] ${e.message}`));
  pages.push({ name, page });
  await page.goto(`${pageOrigin}/`);
  return page;
}

const peerConfig = (role, extra = {}) => ({
  region: 'us-west-2', endpoint: emulatorURL, channelName, role, credentials, clientId: `viewer-${role === 'VIEWER' ? extra.n : 0}`, ...extra,
});

test('a cross-origin call gets its preflight answered and reads the exposed headers', async () => {
  const page = await openPage('preflight');
  // Custom headers make this a non-simple request: Chromium sends a
  // preflight first and only then the POST, whose 403 (unsigned) the
  // script may read, with the headers the SDK needs.
  const got = await page.evaluate(async (url) => {
    const r = await fetch(`${url}/describeSignalingChannel`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-amz-date': '20240101T000000Z', 'amz-sdk-invocation-id': 'x' },
      body: '{}',
    });
    return { status: r.status, errorType: r.headers.get('x-amzn-ErrorType'), requestId: r.headers.get('x-amzn-RequestId'), date: r.headers.get('Date') };
  }, emulatorURL);
  assert.equal(got.status, 403);
  assert.match(got.errorType ?? '', /^MissingAuthenticationTokenException:/);
  assert.ok(got.requestId, 'x-amzn-RequestId is exposed');
  assert.ok(got.date, 'Date is exposed');
});

for (const relayOnly of [false, true]) {
  test(`master and viewer connect with AWS's clients and exchange data-channel messages${relayOnly ? ' through the emulator\'s TURN server' : ''}`, async () => {
    const n = relayOnly ? 2 : 1;
    const master = await openPage(`master-${n}`);
    const viewer = await openPage(`viewer-${n}`);
    const masterDone = master.evaluate((cfg) => window.runPeer(cfg), peerConfig('MASTER', { relayOnly }));
    masterDone.catch(() => {}); // awaited below; a failure must not go unhandled meanwhile
    await master.waitForFunction(() => window.masterConnected(), null, { timeout: T });
    const viewerDone = viewer.evaluate((cfg) => window.runPeer(cfg), peerConfig('VIEWER', { n, relayOnly }));
    const timeout = new Promise((_, no) => setTimeout(() => no(new Error(`no data-channel message within ${T} ms`)), T));
    const [m, v] = await Promise.race([Promise.all([masterDone, viewerDone]), timeout]);
    assert.equal(m.received, `hello master, from viewer-${n}`);
    assert.equal(v.received, `hello viewer viewer-${n}, from the master`);
    assert.match(m.log, /endpoints \{"WSS":"wss:\/\/127\.0\.0\.1:\d+\/signaling\/master\//);
    assert.match(v.log, /2 ICE servers: turn:127\.0\.0\.1:\d+\?transport=udp/);
  });
}

// adminJSON reads the emulator's admin API, trusting its certificate.
async function adminJSON(p) {
  const ca = await readFile(env('KVSSIGN_CERT'));
  return new Promise((resolve, reject) => {
    httpsGet(`${emulatorURL}${p}`, { ca }, (res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => { try { resolve(JSON.parse(body)); } catch (e) { reject(e); } });
    }).on('error', reject);
  });
}

test('the sample page\'s ingestion mode streams H.264 and Opus into the storage session, which records them', async () => {
  const page = await openPage('ingest');
  const channel = `${channelName}-ingest`;
  const run = page.evaluate((cfg) => window.runIngest(cfg), { ...peerConfig('MASTER'), channelName: channel, seconds: 4 });
  const timeout = new Promise((_, no) => setTimeout(() => no(new Error(`no storage connection within ${T} ms`)), T));
  const got = await Promise.race([run, timeout]);
  assert.match(got.log, /JoinStorageSession/);
  assert.match(got.log, /offer from storage-peer-/);
  assert.match(got.log, /sent: .*video packets=[1-9]/);
  await page.close(); // the session ends when its peer connection does
  const recs = (await adminJSON('/_emulator/recordings')).filter((r) => r.channel === channel);
  assert.equal(recs.length, 1, `one recording of ${channel}: ${JSON.stringify(recs)}`);
  assert.ok(recs[0].videoFrames > 25 && recs[0].audioFrames > 50, `a second of video and audio at least: ${JSON.stringify(recs[0])}`);
  console.log(`  recording ${recs[0].name}: ${recs[0].size} bytes, ${recs[0].videoFrames} video frames ${recs[0].width}x${recs[0].height} ${recs[0].profile}, ${recs[0].audioFrames} audio frames`);
});
