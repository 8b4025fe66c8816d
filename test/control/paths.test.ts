/** Where control sockets go by default, and how the CLI finds the one running muxtun. */
import { link, mkdir, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { defaultControlDir, defaultControlPath, findControlSocket, listControlSockets } from '../../src/control/paths.js';
import { connectStatus, startFakeControl } from '../support/control.js';
import { tempDir } from '../support/fs.js';
import { rejection } from '../support/wait.js';

const handlers = { status: () => connectStatus };

describe('defaultControlDir', () => {
  it('is $XDG_RUNTIME_DIR/muxtun when that is absolute, else run/ in the default state dir', () => {
    expect(defaultControlDir({ XDG_RUNTIME_DIR: '/run/user/1000' }, '/home/u')).toBe('/run/user/1000/muxtun');
    expect(defaultControlDir({ XDG_RUNTIME_DIR: 'relative' }, '/home/u')).toBe('/home/u/.local/state/muxtun/run');
    expect(defaultControlDir({}, '/home/u')).toBe('/home/u/.local/state/muxtun/run');
    expect(defaultControlDir({ XDG_STATE_HOME: '/st' }, '/home/u')).toBe('/st/muxtun/run');
    expect(defaultControlPath('serve', 42, { XDG_RUNTIME_DIR: '/run/user/1000' }, '/home/u')).toBe('/run/user/1000/muxtun/serve-42.sock');
  });
});

/** A socket file in `dir` that nobody listens on, as a killed muxtun leaves it. */
async function deadSocket(dir: string, name: string): Promise<void> {
  const hidden = join(dir, '.hidden');
  await mkdir(hidden, { recursive: true });
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(join(hidden, name), resolve));
  await link(join(hidden, name), join(dir, name));
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

describe('findControlSocket', () => {
  it('with none running: a clear error naming the directory and --control', async () => {
    const dir = await tempDir();
    await deadSocket(dir, 'connect-99.sock');
    await writeFile(join(dir, 'notes.txt'), '');
    const error = await rejection(findControlSocket({ dir }));
    expect(error.code).toBe('ERR_MUXTUN_CONTROL_DISCOVERY');
    expect(error.message).toBe(`no running muxtun found in ${dir} (use --control PATH)`);
    expect(await listControlSockets(join(dir, 'missing'))).toEqual([]);
  });

  it('with one running (and dead ones beside it): that one', async () => {
    const dir = await tempDir();
    await deadSocket(dir, 'connect-99.sock');
    await startFakeControl(handlers, { path: join(dir, 'connect-1234.sock') });
    expect(await findControlSocket({ dir })).toEqual({ path: join(dir, 'connect-1234.sock'), kind: 'connect', pid: 1234 });
  });

  it('with several running: an error listing each with its kind and pid; a kind that is unique picks it', async () => {
    const dir = await tempDir();
    await startFakeControl(handlers, { path: join(dir, 'connect-11.sock') });
    await startFakeControl(handlers, { path: join(dir, 'connect-12.sock') });
    await startFakeControl(handlers, { path: join(dir, 'serve-13.sock'), kind: 'serve' });
    const error = await rejection(findControlSocket({ dir }));
    expect(error.code).toBe('ERR_MUXTUN_CONTROL_DISCOVERY');
    expect(error.message).toContain('3 running muxtuns found');
    expect(error.message).toContain('choose one with --control PATH');
    expect(error.message).toContain(`${join(dir, 'connect-11.sock')}  (connect pid 11)`);
    expect(error.message).toContain(`${join(dir, 'serve-13.sock')}  (serve pid 13)`);
    expect(await findControlSocket({ dir, kind: 'serve' })).toMatchObject({ pid: 13 });
    expect((await rejection(findControlSocket({ dir, kind: 'connect' }))).message).toContain('2 running muxtun connects found');
  });

  it('with only another kind running: says which one it found', async () => {
    const dir = await tempDir();
    await startFakeControl(handlers, { path: join(dir, 'serve-5.sock'), kind: 'serve' });
    expect((await rejection(findControlSocket({ dir, kind: 'connect' }))).message).toBe(`no running muxtun connect found in ${dir} (only serve pid 5) (use --control PATH)`);
  });
});
