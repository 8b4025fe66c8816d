/**
 * The README's engine example must keep working as printed: it is run as a
 * real Node process from inside the package (so `muxtun/muxado` resolves
 * through the package's own exports, as it will for users), on a free port.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

function engineExample(): string {
  const readme = readFileSync(path.join(root, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## The engine on its own'));
  const match = /```js\n([\s\S]*?)```/.exec(section);
  if (!match) throw new Error('README: no ```js block under "## The engine on its own"');
  return match[1]!;
}

async function freePort(): Promise<number> {
  const server = net.createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

it('the README engine example echoes "hello" and closes its session', async () => {
  const code = engineExample();
  expect(code).toContain("from 'muxtun/muxado'");
  expect(code.split('\n').filter((line) => line.trim() !== '').length).toBeLessThanOrEqual(12);
  const port = await freePort();
  const dir = path.join(root, '.tmp');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `readme-example-${process.pid}.mjs`);
  writeFileSync(file, code.replaceAll('7000', String(port)));

  const child = spawn(process.execPath, [file], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d));
  child.stderr.on('data', (d: Buffer) => (stderr += d));
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no "hello" within 10 s\nstdout: ${stdout}\nstderr: ${stderr}`)), 10_000);
      child.stdout.on('data', () => {
        if (stdout.includes('hello')) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once('exit', (exitCode) => {
        clearTimeout(timer);
        reject(new Error(`the example exited with ${exitCode} before printing "hello"\nstderr: ${stderr}`));
      });
    });
    expect(stdout.trim()).toBe('hello');
    expect(stderr).toBe('');
  } finally {
    child.kill('SIGKILL');
    rmSync(file, { force: true });
  }
});
