/**
 * The README's engine example must keep working as printed: it is run as a
 * real Node process from inside the package (so `muxtun/muxado` resolves
 * through the package's own exports, as it will for users), on a free port.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
import { freePort } from '../support/net.js';
import { repoRoot, TestProcess } from '../support/process.js';

function engineExample(): string {
  const readme = readFileSync(path.join(repoRoot, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## The engine on its own'));
  const match = /```js\n([\s\S]*?)```/.exec(section);
  if (!match) throw new Error('README: no ```js block under "## The engine on its own"');
  return match[1]!;
}

it('the README engine example echoes "hello" and closes its session', async () => {
  const code = engineExample();
  expect(code).toContain("from 'muxtun/muxado'");
  expect(code.split('\n').filter((line) => line.trim() !== '').length).toBeLessThanOrEqual(12);
  const port = await freePort();
  const dir = path.join(repoRoot, '.tmp');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `readme-example-${process.pid}.mjs`);
  writeFileSync(file, code.replaceAll('7000', String(port)));

  const child = new TestProcess({ command: process.execPath, args: [file], name: 'the README engine example' });
  try {
    await child.waitForStdout('"hello"', (line) => (line.includes('hello') ? true : undefined), { timeoutMs: 10_000 });
    expect(child.stdout.join('\n').trim()).toBe('hello');
    expect(child.stderr.join('\n')).toBe('');
  } finally {
    await child.kill();
    rmSync(file, { force: true });
  }
});
