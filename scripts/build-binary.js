#!/usr/bin/env node
// Builds dist/muxtun-<platform>-<arch>: one executable that runs with no Node.js
// installed and no node_modules beside it, using Node's Single Executable
// Applications (SEA) support, entirely offline:
//
//   1. esbuild bundles the compiled CLI (dist/, from `npm run build`) and every
//      dependency into one CommonJS file. Node 20's SEA runs a single CommonJS
//      script whose `require` reaches built-in modules only, so the bundle must
//      hold everything. The version is baked in (`__MUXTUN_VERSION__`) because
//      the binary has no package.json to read.
//   2. `node --experimental-sea-config` turns that file into a blob.
//   3. A copy of this very node binary (process.execPath) gets the blob
//      injected by postject into the NODE_SEA_BLOB section and its SEA fuse
//      flipped.
//
// Why not `pkg`: it is archived upstream and downloads its base binaries at
// build time, which cannot work offline. SEA needs nothing but the node
// binary we already run.
//
// Usage: node scripts/build-binary.js [--if-stale]
//   --if-stale  do nothing when the binary is newer than everything it is built
//               from (dist/, package.json, this script, the node binary).
// Intermediate files go to .tmp/build-binary/; only the finished binary is
// renamed into dist/, so a half-written binary never appears there.

import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire, isBuiltin } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const work = join(root, '.tmp', 'build-binary');
const outputName = `muxtun-${process.platform}-${process.arch}`;
const output = join(root, 'dist', outputName);
const started = performance.now();

if (process.platform !== 'linux') {
  // macOS needs the signature removed and re-added around the injection, and
  // Windows a PE resource: neither is wired up (or testable) here.
  fail(`only Linux is supported by this script (this is ${process.platform})`);
}
if (process.config.variables.node_shared) {
  // Distribution builds (Debian's nodejs, for one) are a small launcher around
  // libnode.so: a copy of that launcher would still need the library installed.
  fail(`${process.execPath} links libnode dynamically; run this script with an official Node.js build (a self-contained binary)`);
}
if (!existsSync(join(root, 'dist', 'cli', 'main.js'))) fail('dist/cli/main.js is missing: run `npm run build` first (or `npm run build:binary`)');

const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));

if (process.argv.includes('--if-stale') && !isStale()) {
  console.log(`build-binary: ${relative(root, output)} is up to date`);
  process.exit(0);
}

rmSync(work, { recursive: true, force: true });
mkdirSync(work, { recursive: true });

/**
 * ws tries these native add-ons in a try/catch and falls back to JavaScript
 * without them; they are not installed, and a binary could not load them
 * anyway. Resolve each to a module that throws, so the fallback is taken.
 */
function optionalNativeAddons(names) {
  const filter = new RegExp(`^(${names.map((name) => name.replace(/[-/]/g, '\\$&')).join('|')})$`);
  return {
    name: 'optional-native-addons',
    setup(builder) {
      builder.onResolve({ filter }, (args) => ({ path: args.path, namespace: 'optional-native-addon' }));
      builder.onLoad({ filter: /.*/, namespace: 'optional-native-addon' }, (args) => ({
        contents: `throw new Error(${JSON.stringify(`${args.path} is not bundled in the single binary`)});`,
        loader: 'js',
      }));
    },
  };
}

// 1. One CommonJS file. The entry mirrors bin/muxtun.js without its top-level
// await, which CommonJS cannot have.
const bundle = join(work, 'muxtun.cjs');
const result = await build({
  stdin: {
    contents: `
      import { tuneHeapForStreaming } from './dist/cli/heap-tuning.js';
      // Before the rest of muxtun is loaded (a dynamic import: esbuild runs
      // that module's code only when it is reached), as bin/muxtun.js does.
      tuneHeapForStreaming();
      import('./dist/cli/main.js')
        .then(({ main }) => main(process.argv.slice(2), { env: process.env, stdout: process.stdout, stderr: process.stderr }))
        .then((code) => {
          process.exitCode = code;
          // Open handles (listeners, timers) must not keep a finished command alive.
          setImmediate(() => process.exit(code)).unref();
        });
    `,
    resolveDir: root,
    sourcefile: 'sea-entry.js',
    loader: 'js',
  },
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  outfile: bundle,
  define: {
    __MUXTUN_VERSION__: JSON.stringify(version),
    // main.ts only reads import.meta.url when __MUXTUN_VERSION__ is unset,
    // which it never is here; say so instead of leaving esbuild to warn.
    'import.meta.url': 'undefined',
  },
  legalComments: 'none',
  logLevel: 'warning',
  metafile: true,
  plugins: [optionalNativeAddons(['bufferutil', 'utf-8-validate'])],
});
if (result.warnings.length > 0) fail(`esbuild warned ${result.warnings.length} time(s); a warning here usually means a require the binary cannot satisfy`);
assertOnlyBuiltins(result.metafile);

// 2. The SEA blob.
const blob = join(work, 'sea-prep.blob');
const seaConfig = join(work, 'sea-config.json');
writeFileSync(seaConfig, `${JSON.stringify({ main: bundle, output: blob, disableExperimentalSEAWarning: true }, null, 2)}\n`);
run('node --experimental-sea-config', process.execPath, ['--experimental-sea-config', seaConfig]);

// 3. A copy of node with the blob injected. postject's CLI (not its API) so
// that its chatter, and LIEF's harmless "Can't find string offset" warnings
// about node's ELF notes, can be kept out of the build log unless it fails.
const staged = join(work, outputName);
copyFileSync(process.execPath, staged);
chmodSync(staged, 0o755);
const postject = createRequire(import.meta.url).resolve('postject/dist/cli.js');
run('postject', process.execPath, [postject, staged, 'NODE_SEA_BLOB', blob, '--sentinel-fuse', 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2']);

// Smoke test before publishing it into dist/: the injected program must run.
const printed = execFileSync(staged, ['--version'], { env: {}, encoding: 'utf8' }).trim();
if (printed !== version) fail(`the built binary printed ${JSON.stringify(printed)} for --version, expected ${version}`);

mkdirSync(dirname(output), { recursive: true });
renameSync(staged, output);
const mib = (statSync(output).size / 2 ** 20).toFixed(1);
const kib = (statSync(bundle).size / 1024).toFixed(0);
const seconds = ((performance.now() - started) / 1000).toFixed(1);
console.log(`build-binary: ${relative(root, output)} (${mib} MiB, node ${process.version}, bundle ${kib} KiB) in ${seconds} s`);

/** True when the binary is missing or older than anything it is built from. */
function isStale() {
  if (!existsSync(output)) return true;
  const built = statSync(output).mtimeMs;
  const inputs = [join(root, 'package.json'), fileURLToPath(import.meta.url), process.execPath, ...filesUnder(join(root, 'dist'))];
  return inputs.some((file) => file !== output && statSync(file).mtimeMs > built);
}

function filesUnder(dir) {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile() && entry.name.endsWith('.js'))
    .map((entry) => join(entry.parentPath ?? entry.path, entry.name));
}

/** Node 20's SEA `require` loads built-in modules only: anything else left unbundled would fail at run time. */
function assertOnlyBuiltins(metafile) {
  const external = new Set();
  for (const output of Object.values(metafile.outputs)) {
    for (const imported of output.imports) {
      if (imported.external && !isBuiltin(imported.path)) external.add(imported.path);
    }
  }
  if (external.size > 0) fail(`the bundle still requires non-built-in modules: ${[...external].join(', ')}`);
}

/** Runs a build step, showing its output only if it fails. */
function run(label, command, args) {
  try {
    execFileSync(command, args, { stdio: 'pipe', encoding: 'utf8' });
  } catch (error) {
    fail(`${label} failed:\n${error.stdout ?? ''}${error.stderr ?? error.message}`);
  }
}

function fail(message) {
  console.error(`build-binary: ${message}`);
  process.exit(1);
}
