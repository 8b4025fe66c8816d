/**
 * ClientForwards, the client's forward registry: ids never reused, a
 * reload's diff by spec (same spec untouched, a moved target is a removal
 * and an addition), which -R forwards the server must be told about, and a
 * -L or -D listener closed alone.
 */
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import type { DynamicSpec } from '../../src/tunnel/client-dynamic.js';
import { ClientForwards, forwardKey } from '../../src/tunnel/client-forwards.js';
import type { ForwardSpec } from '../../src/tunnel/forward.js';
import { LocalListeners } from '../../src/tunnel/local-listeners.js';
import { silentLogger } from '../../src/tunnel/logger.js';
import { freePort } from '../support/net.js';
import { currentScope } from '../support/scope.js';

const spec = (bindPort: number, targetPort = 80, bindHost = '127.0.0.1'): ForwardSpec => ({ bindHost, bindPort, targetHost: 'db', targetPort });

function registry(initial: { local?: ForwardSpec[]; remote?: ForwardSpec[]; dynamic?: DynamicSpec[] } = {}): ClientForwards {
  const accept = (_listener: unknown, socket: net.Socket): void => void socket.destroy();
  const forwards = new ClientForwards(
    { local: new LocalListeners<ForwardSpec>(silentLogger, accept, () => '-L'), socks: new LocalListeners<DynamicSpec>(silentLogger, accept, () => '-D') },
    { local: initial.local ?? [], remote: initial.remote ?? [], dynamic: initial.dynamic ?? [], allowTarget: [] },
  );
  currentScope().add(async () => forwards.closeAll());
  return forwards;
}

const refused = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code === 'ECONNREFUSED'));
  });

describe('forwardKey', () => {
  it('is the spec: kind, bind address and target; a reverse dynamic -R ignores its target fields', () => {
    expect(forwardKey('local', spec(8080))).toBe(forwardKey('local', { ...spec(8080) }));
    expect(forwardKey('local', spec(8080))).not.toBe(forwardKey('remote', spec(8080)));
    expect(forwardKey('local', spec(8080))).not.toBe(forwardKey('local', spec(8080, 81)));
    expect(forwardKey('local', spec(8080))).not.toBe(forwardKey('local', spec(8080, 80, '0.0.0.0')));
    expect(forwardKey('remote', { ...spec(9000), dynamic: true })).toBe(forwardKey('remote', { ...spec(9000, 1), targetHost: 'x', dynamic: true }));
    expect(forwardKey('remote', { ...spec(9000), dynamic: false })).toBe(forwardKey('remote', spec(9000)));
    expect(forwardKey('dynamic', { bindHost: '127.0.0.1', bindPort: 1080 })).toBe(forwardKey('dynamic', { ...spec(1080) }));
  });
});

describe('ClientForwards', () => {
  it('numbers -R first from 0 (the wire ids of a client that never reloads), then -L and -D; ids are never reused', () => {
    const forwards = registry({ local: [spec(1)], remote: [spec(2), spec(3)], dynamic: [{ bindHost: '127.0.0.1', bindPort: 4 }] });
    expect(forwards.list().map((f) => [f.kind, f.id])).toEqual([
      ['local', 2],
      ['remote', 0],
      ['remote', 1],
      ['dynamic', 3],
    ]);
    expect(forwards.remove(1)?.forward.id).toBe(1);
    expect(forwards.remoteSpec(1)).toBeUndefined();
    expect(forwards.addRemote(spec(3))).toBe(4);
    expect(forwards.remove(99)).toBeUndefined();
  });

  it('diff: the same spec is unchanged, a changed target is removed and added, duplicates of port 0 are matched one for one', () => {
    const forwards = registry({ local: [spec(8080), spec(0), spec(0)], remote: [spec(9000)] });
    const diff = forwards.diff({ local: [spec(8080, 81), spec(0)], remote: [spec(9000)], dynamic: [{ bindHost: '127.0.0.1', bindPort: 1080 }] });
    expect(diff.unchanged).toBe(2);
    expect(diff.remove.map((id) => forwards.info(id)?.spec.bindPort).sort()).toEqual([0, 8080]);
    expect(diff.add).toEqual([
      { kind: 'local', spec: spec(8080, 81) },
      { kind: 'dynamic', spec: { bindHost: '127.0.0.1', bindPort: 1080 } },
    ]);
  });

  it('diff leaves forwards added while running alone, unless the options now name them (then they are the options\' own)', () => {
    const forwards = registry({ local: [spec(8080)] });
    const added = forwards.addRemote(spec(9000));
    forwards.markRuntime(added);
    const other = forwards.addRemote(spec(9001));
    forwards.markRuntime(other);
    // A reload without them: the options' -L (id 0) goes, the two added ones stay.
    expect(forwards.diff({ local: [], remote: [], dynamic: [] })).toEqual({ remove: [0], add: [], unchanged: 0 });
    // A reload that names one: kept (not added twice), and from then on removable by a reload.
    expect(forwards.diff({ local: [spec(8080)], remote: [spec(9000)], dynamic: [] })).toEqual({ remove: [], add: [], unchanged: 2 });
    const third = forwards.diff({ local: [spec(8080)], remote: [], dynamic: [] });
    expect(third.remove).toEqual([added]);
    // Removed by id, it is forgotten as an added-while-running one too.
    forwards.remove(other);
    expect(forwards.diff({ local: [spec(8080)], remote: [], dynamic: [] }).remove).toEqual([added]);
  });

  it('a -R needs an unlisten only if it was asked for in this server session and not refused; a fresh session forgets what was withdrawn', () => {
    const forwards = registry({ remote: [spec(1), spec(2), spec(3)] });
    const withdrawn: number[] = [];
    forwards.on('withdrawn', (id) => withdrawn.push(id));
    expect(forwards.takeUnrequested().map((f) => f.id)).toEqual([0, 1, 2]);
    expect(forwards.takeUnrequested()).toEqual([]);
    forwards.record([
      { id: 0, spec: spec(1), ok: true, port: 1 },
      { id: 1, spec: spec(2), ok: false, code: 'ERR_MUXTUN_POLICY', message: 'no' },
      { id: 2, spec: spec(3), ok: false, code: 'ERR_MUXTUN_SESSION_LOST', message: 'gone' },
    ]);
    expect(forwards.list().map((f) => f.kind === 'remote' && [f.state, f.port, f.error?.code ?? null])).toEqual([
      ['listening', 1, null],
      ['refused', null, 'ERR_MUXTUN_POLICY'],
      ['pending', null, null],
    ]);
    expect(forwards.remove(0)?.unlisten).toBe(true);
    expect(forwards.remove(1)?.unlisten).toBe(false);
    // Unanswered when the link dropped: asked again on the next link.
    expect(forwards.takeUnrequested().map((f) => f.id)).toEqual([2]);
    expect(forwards.remove(2)?.unlisten).toBe(true);
    expect(withdrawn).toEqual([0, 1, 2]);
    expect(forwards.withdrawnIds()).toEqual([0, 2]);
    forwards.freshSession();
    expect(forwards.withdrawnIds()).toEqual([]);
  });

  it('removing a -L or a -D closes that listener alone', async () => {
    const [a, b, c] = await Promise.all([freePort(), freePort(), freePort()]);
    const forwards = registry({ local: [spec(a)], dynamic: [{ bindHost: '127.0.0.1', bindPort: b }] });
    await forwards.bindAll(() => undefined);
    const added = await forwards.addBound('dynamic', { bindHost: '127.0.0.1', bindPort: c });
    expect(added).toMatchObject({ kind: 'dynamic', address: { port: c } });
    expect(forwards.socksListeners.all).toHaveLength(2);
    forwards.remove(forwards.list().find((f) => f.spec.bindPort === b)!.id);
    forwards.remove(forwards.list().find((f) => f.spec.bindPort === a)!.id);
    expect(await refused(a)).toBe(true);
    expect(await refused(b)).toBe(true);
    expect(await refused(c)).toBe(false);
    expect(forwards.list().map((f) => f.spec.bindPort)).toEqual([c]);
    await expect(forwards.addBound('local', spec(c))).rejects.toMatchObject({ code: 'ERR_MUXTUN_BIND' });
    expect(forwards.list()).toHaveLength(1);
  });
});
