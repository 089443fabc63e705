// Unit tests of web/src/vend.js, the page's one call to the vending API:
// node --test, no browser.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { normalise, redactURL, vendConnection, VendError } from '../src/vend.js';

const arn = 'arn:aws:kinesisvideo:eu-west-1:123456789012:channel/demo/1700000000000';
const signed = 'wss://v-1a2b3c4d.kinesisvideo.eu-west-1.amazonaws.com/?X-Amz-Algorithm=AWS4-HMAC-SHA256' +
  `&X-Amz-ChannelARN=${encodeURIComponent(arn)}&X-Amz-ClientId=token-demo.abc` +
  '&X-Amz-Credential=ASIAEXAMPLEEXAMPLE12%2F20261123%2Feu-west-1%2Fkinesisvideo%2Faws4_request' +
  '&X-Amz-Date=20261123T110000Z&X-Amz-Expires=299&X-Amz-Security-Token=FwoGZXIvYXdzEXAMPLE%2B%2F%3D' +
  '&X-Amz-SignedHeaders=host&X-Amz-Signature=' + 'ab'.repeat(32);

test('normalise reads the vend answer as kvssign serve writes it', () => {
  const c = normalise({
    url: signed, expiresAt: '2026-11-23T11:04:59Z', role: 'VIEWER', clientId: 'token-demo.abc',
    channelArn: arn, region: 'eu-west-1', endpoint: 'wss://v-1a2b3c4d.kinesisvideo.eu-west-1.amazonaws.com',
    iceServers: [{ urls: ['stun:stun.kinesisvideo.eu-west-1.amazonaws.com:443'] }, { urls: ['turn:1-2-3-4.t-x.kinesisvideo.eu-west-1.amazonaws.com:443?transport=udp'], username: 'u', credential: 'p' }],
  });
  assert.equal(c.url, signed);
  assert.equal(c.channelARN, arn);
  assert.equal(c.region, 'eu-west-1');
  assert.equal(c.clientId, 'token-demo.abc');
  assert.equal(c.endpoint, 'wss://v-1a2b3c4d.kinesisvideo.eu-west-1.amazonaws.com');
  assert.equal(c.expiresAt.toISOString(), '2026-11-23T11:04:59.000Z');
  assert.deepEqual(c.iceServers[1], { urls: ['turn:1-2-3-4.t-x.kinesisvideo.eu-west-1.amazonaws.com:443?transport=udp'], username: 'u', credential: 'p' });
});

test('normalise needs only the URL: the rest is in the signed query', () => {
  const c = normalise({ url: signed, iceServers: [{ Uris: ['turn:127.0.0.1:4566?transport=udp'], Username: 'u', Password: 'p', Ttl: 300 }] });
  assert.equal(c.channelARN, arn);
  assert.equal(c.region, 'eu-west-1');
  assert.equal(c.clientId, 'token-demo.abc');
  assert.equal(c.endpoint, 'wss://v-1a2b3c4d.kinesisvideo.eu-west-1.amazonaws.com');
  assert.equal(c.expiresAt.toISOString(), '2026-11-23T11:04:59.000Z');
  assert.deepEqual(c.iceServers, [{ urls: ['turn:127.0.0.1:4566?transport=udp'], username: 'u', credential: 'p' }]);
});

test('normalise keeps an emulator endpoint path', () => {
  const c = normalise({ url: 'ws://127.0.0.1:4566/signaling/master/m-0011aabb?X-Amz-ChannelARN=' + encodeURIComponent(arn) });
  assert.equal(c.endpoint, 'ws://127.0.0.1:4566/signaling/master/m-0011aabb');
});

test('normalise refuses what is not a signaling URL', () => {
  for (const [d, want] of [
    [{}, /no url/],
    [{ url: 'not a url' }, /not a URL/],
    [{ url: 'https://example.com/?X-Amz-ChannelARN=x' }, /want wss:/],
    [{ url: 'wss://example.com/' }, /no channel ARN/],
  ]) {
    assert.throws(() => normalise(d), (e) => e instanceof VendError && want.test(e.message), JSON.stringify(d));
  }
});

test('redactURL shows where and when, never the credential, token or signature', () => {
  const r = redactURL(signed);
  assert.equal(r, 'wss://v-1a2b3c4d.kinesisvideo.eu-west-1.amazonaws.com/ (signed 20261123T110000Z, valid 299 s)');
  for (const s of ['ASIA', 'Security-Token', 'FwoG', 'Signature', 'abab']) assert.ok(!r.includes(s), s);
});

test('vendConnection sends the token and the request, and reports errors with status and message', async (t) => {
  const calls = [];
  const reply = (status, body, headers = {}) => async (url, init) => {
    calls.push({ url, init });
    return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json', ...headers } });
  };
  const cfg = { api: 'http://127.0.0.1:8080/', channel: 'demo', role: 'VIEWER', token: 'tok' };
  t.mock.method(globalThis, 'fetch', reply(200, { url: signed }));
  const c = await vendConnection(cfg);
  assert.equal(c.channelARN, arn);
  assert.equal(calls[0].url, 'http://127.0.0.1:8080/v1/connections');
  assert.equal(calls[0].init.method, 'POST');
  assert.equal(calls[0].init.headers.Authorization, 'Bearer tok');
  assert.equal(calls[0].init.credentials, 'omit');
  assert.deepEqual(JSON.parse(calls[0].init.body), { channel: 'demo', role: 'VIEWER' });

  t.mock.method(globalThis, 'fetch', reply(429, { error: { code: 'rate_limited', message: 'too many requests' } }, { 'Retry-After': '2' }));
  await assert.rejects(vendConnection(cfg), { message: 'vending service said 429: rate_limited: too many requests (retry after 2 s)' });

  t.mock.method(globalThis, 'fetch', async () => { throw new TypeError('fetch failed'); });
  await assert.rejects(vendConnection(cfg), /vending service at http:\/\/127.0.0.1:8080: unreachable/);
});
