#!/usr/bin/env node
// Thin entry point: all behaviour lives in src/cli (built to dist/cli).
import { main, tuneHeapForStreaming } from '../dist/cli/main.js';

tuneHeapForStreaming();

const code = await main(process.argv.slice(2), { env: process.env, stdout: process.stdout, stderr: process.stderr });
process.exitCode = code;
// Open handles (listeners, timers) must not keep a finished command alive.
setImmediate(() => process.exit(code)).unref();
