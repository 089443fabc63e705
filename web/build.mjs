// Builds web/dist from web/src: the page, its stylesheet, and app.js bundled
// with the KVS JS SDK by esbuild. Run `npm run build` in web/ after changing
// anything in src/ and commit dist/ with it, so that `go build` (which embeds
// dist/) needs no npm. The output is deterministic: the browser test rebuilds
// and fails if dist/ differs from what is committed.
import { build } from 'esbuild';
import { copyFile, mkdir, readFile, rm } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const here = path.dirname(fileURLToPath(import.meta.url));
const src = path.join(here, 'src');
const dist = path.join(here, 'dist');
const sdk = JSON.parse(await readFile(path.join(here, 'node_modules/amazon-kinesis-video-streams-webrtc/package.json'), 'utf8'));
const stub = path.join(src, 'stubs/no-signing.js');

await rm(dist, { recursive: true, force: true });
await mkdir(dist, { recursive: true });
await build({
  entryPoints: [path.join(src, 'app.js')],
  outfile: path.join(dist, 'app.js'),
  bundle: true,
  format: 'iife',
  platform: 'browser',
  target: ['chrome110', 'firefox110', 'safari16'],
  minify: true,
  legalComments: 'eof',
  charset: 'utf8',
  logLevel: 'warning',
  // The SDK's SigV4 signer needs WebCrypto via isomorphic-webcrypto and its
  // Node fallback needs ws; the page uses neither (see stubs/no-signing.js).
  alias: { 'isomorphic-webcrypto': stub, ws: stub },
  define: { 'process.env.PACKAGE_VERSION': JSON.stringify(sdk.version) },
});
for (const f of ['index.html', 'app.css']) await copyFile(path.join(src, f), path.join(dist, f));
console.log(`web/dist built with amazon-kinesis-video-streams-webrtc ${sdk.version}`);
