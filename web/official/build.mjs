// Builds dist/ (index.html and page.js bundled by esbuild) from src/: the
// official-client test page. scripts/official-client-test.sh runs it; the
// output is not committed.
import { build } from 'esbuild';
import { copyFile, mkdir, readFile, rm } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const here = path.dirname(fileURLToPath(import.meta.url));
const src = path.join(here, 'src');
const dist = path.join(here, 'dist');
const sdk = JSON.parse(await readFile(path.join(here, 'node_modules/amazon-kinesis-video-streams-webrtc/package.json'), 'utf8'));

await rm(dist, { recursive: true, force: true });
await mkdir(dist, { recursive: true });
await build({
  entryPoints: [path.join(src, 'page.js')],
  outfile: path.join(dist, 'page.js'),
  bundle: true,
  format: 'iife',
  platform: 'browser',
  target: ['chrome110'],
  logLevel: 'warning',
  // The browser has WebSocket; the SDK's Node fallback is not bundled.
  alias: { ws: path.join(src, 'ws-stub.js') },
  define: { 'process.env.PACKAGE_VERSION': JSON.stringify(sdk.version) },
});
await copyFile(path.join(src, 'index.html'), path.join(dist, 'index.html'));
console.log(`web/official/dist built with amazon-kinesis-video-streams-webrtc ${sdk.version}`);
