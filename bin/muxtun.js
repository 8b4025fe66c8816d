#!/usr/bin/env node
// Thin entry point: all behaviour lives in src/cli (built to dist/cli).
import { tuneHeapForStreaming } from '../dist/cli/heap-tuning.js';

// First, before the rest of muxtun is loaded: loading it grows V8's young
// generation, and the tuning only keeps it from growing further.
tuneHeapForStreaming();
const { main } = await import('../dist/cli/main.js');

const code = await main(process.argv.slice(2), { env: process.env, stdout: process.stdout, stderr: process.stderr });
process.exitCode = code;
// Open handles (listeners, timers) must not keep a finished command alive.
setImmediate(() => process.exit(code)).unref();
