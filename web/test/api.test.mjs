// Unit tests of checkAPI (web/src/vend.js): where the page may send the
// vending token. node --test, no browser.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkAPI, VendError } from '../src/vend.js';

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
