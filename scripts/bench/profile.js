// Summarises V8 .cpuprofile files (from `node --cpu-prof`): the frames with
// the most self time, as shares of the samples where the process was busy.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { root } from './procs.js';

/** Where a frame lives, short: our files relative to the repo, Node's as node:..., others by base name. */
function where(url, line) {
  if (!url) return '';
  let file = url.replace(/^file:\/\//, '');
  if (file.startsWith(root)) file = path.relative(root, file);
  else if (!file.startsWith('node:')) file = path.basename(file);
  return `${file}:${line + 1}`;
}

/**
 * Top `limit` frames by self time. Idle time is left out of the total: the
 * shares say where a busy process spends its CPU.
 */
export function summariseProfile(file, limit = 12) {
  const profile = JSON.parse(readFileSync(file, 'utf8'));
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const self = new Map();
  let busy = 0;
  let idle = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const node = byId.get(profile.samples[i]);
    const dt = profile.timeDeltas[i] ?? 0;
    const { functionName, url, lineNumber } = node.callFrame;
    if (functionName === '(idle)') {
      idle += dt;
      continue;
    }
    busy += dt;
    const key = `${functionName || '(anonymous)'}\t${where(url, lineNumber)}`;
    self.set(key, (self.get(key) ?? 0) + dt);
  }
  const top = [...self.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, limit)
    .map(([key, us]) => {
      const [fn, at] = key.split('\t');
      return { frame: fn, at, share: us / busy };
    });
  return { busySeconds: busy / 1e6, idleSeconds: idle / 1e6, top };
}
