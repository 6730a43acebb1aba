// Builds the browser bundle (one ESM file with socket.io-client inside) and
// reports the SDK's own size, minified + gzipped, without socket.io-client.
import { build } from 'esbuild';
import { mkdirSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const common = { entryPoints: [`${root}dist/index.js`], bundle: true, format: 'esm', platform: 'browser', target: 'es2020', minify: true, legalComments: 'none', logLevel: 'warning' };

mkdirSync(`${root}dist/browser`, { recursive: true });
await build({ ...common, outfile: `${root}dist/browser/realtime-message-sdk.js`, sourcemap: true });
const own = await build({ ...common, write: false, external: ['socket.io-client'] });
const full = await build({ ...common, write: false });
const size = (r) => ({ minified: r.outputFiles[0].contents.length, gzipped: gzipSync(r.outputFiles[0].contents, { level: 9 }).length });
const report = { sdkOnly: size(own), withSocketIoClient: size(full) };
writeFileSync(`${root}dist/browser/size.json`, JSON.stringify(report, null, 2) + '\n');
console.log(`realtime-message-sdk: ${report.sdkOnly.gzipped} B min+gz (${report.sdkOnly.minified} B min) without socket.io-client; ${report.withSocketIoClient.gzipped} B min+gz with it`);
