// Unit tests of checkAPI (web/src/vend.js): where the page may send the
// vending token. node --test, no browser.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkAPI, vendConnection, VendError } from '../src/vend.js';

const page = 'https://demo.example.com';

test('checkAPI accepts the page origin and listed origins', () => {
  assert.equal(checkAPI('https://demo.example.com', page, []), 'https://demo.example.com');
  assert.equal(checkAPI('https://demo.example.com/vend/', page, []), 'https://demo.example.com/vend');
  assert.equal(checkAPI('https://vend.example.com', page, ['https://vend.example.com']), 'https://vend.example.com');
});

test('checkAPI refuses any other host, whatever a link says', () => {
  for (const api of [
    'https://evil.test', 'https://demo.example.com.evil.test', 'http://demo.example.com',
    'https://demo.example.com:8443', 'https://user@demo.example.com', 'https://demo.example.com/?x=1',
    'javascript:alert(1)', 'data:text/plain,x', 'not a url', '//evil.test',
  ]) {
    assert.throws(() => checkAPI(api, page, ['https://vend.example.com']), VendError, api);
  }
});

test('vendConnection asks for a refresh after a refused handshake', async (t) => {
  const bodies = [];
  t.mock.method(globalThis, 'fetch', async (_url, init) => {
    bodies.push(JSON.parse(init.body));
    return new Response(JSON.stringify({ url: 'wss://v.example/?X-Amz-ChannelARN=arn%3Aaws%3Akinesisvideo%3Aus-west-2%3A123456789012%3Achannel%2Fd%2F1' }), { status: 200 });
  });
  await vendConnection({ api: 'https://demo.example.com', channel: 'd', role: 'MASTER', token: 't' });
  await vendConnection({ api: 'https://demo.example.com', channel: 'd', role: 'MASTER', token: 't', refresh: true });
  assert.deepEqual(bodies, [{ channel: 'd', role: 'MASTER' }, { channel: 'd', role: 'MASTER', refresh: true }]);
});
