// Builds palette.js into a WebAssembly component with componentize-js's
// `componentize()` API, offline (the SpiderMonkey engine ships inside the
// npm package).
//
//   node build.mjs OUT.wasm
//
// The package is resolved from NODE_PATH-like COMPONENTIZE_JS_DIR (a
// node_modules directory outside the clone; build.sh sets it). Features the
// host does not link are disabled: `http` and `fetch-event` would import
// wasi:http, which this host refuses at load. `stdio`, `random` and `clocks`
// stay: they are the WASI imports a reviewer sees in `policy inspect`, and the
// host links them with nothing behind them.
import { readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const out = process.argv[2];
if (!out) {
  console.error('usage: node build.mjs OUT.wasm');
  process.exit(2);
}
const modules = process.env.COMPONENTIZE_JS_DIR;
if (!modules) {
  console.error('COMPONENTIZE_JS_DIR is not set: run build.sh');
  process.exit(3);
}
const entry = join(modules, '@bytecodealliance', 'componentize-js', 'src', 'componentize.js');
const { componentize } = await import(pathToFileURL(entry).href);

const { component } = await componentize({
  sourcePath: join(here, 'palette.js'),
  witPath: join(here, '..', '..', '..', 'wit'),
  worldName: 'policy',
  disableFeatures: ['http', 'fetch-event'],
});
await writeFile(out, component);
console.error(`wrote ${out} (${component.byteLength} bytes)`);
