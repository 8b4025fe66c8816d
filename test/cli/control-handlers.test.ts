/**
 * How the control handlers name forwards and sessions: specs written in
 * full, any spelling of a spec finding its forward, ids first, ambiguity
 * refused rather than guessed, session ids by unique prefix.
 */
import { describe, expect, it } from 'vitest';
import { findForward, findSession, forwardStatus, specText } from '../../src/cli/control-handlers.js';
import { formatForwards } from '../../src/cli/control-format.js';
import type { ForwardInfo, SessionInfo } from '../../src/tunnel/index.js';
import { thrown } from '../support/wait.js';

const spec = (bindHost: string, bindPort: number, targetHost = 'localhost', targetPort = 80) => ({ bindHost, bindPort, targetHost, targetPort });

const forwards: ForwardInfo[] = [
  { id: 0, kind: 'remote', spec: { ...spec('0.0.0.0', 9000, 'localhost', 3000), proxyProtocol: 'v2' }, state: 'listening', port: 9000, error: null, proxyProtocol: 'v2' },
  { id: 1, kind: 'local', spec: spec('127.0.0.1', 8080), address: { address: '127.0.0.1', family: 'IPv4', port: 8080 } },
  { id: 2, kind: 'dynamic', spec: { bindHost: '127.0.0.1', bindPort: 1080 }, address: null },
  { id: 3, kind: 'remote', spec: { ...spec('0.0.0.0', 1080), dynamic: true }, state: 'pending', port: null, error: null, proxyProtocol: undefined },
  { id: 4, kind: 'local', spec: spec('::1', 8443, '::1', 443), address: { address: '::1', family: 'IPv6', port: 8443 } },
];

describe('specText', () => {
  it('writes every forward in full, IPv6 hosts in brackets, dynamic ones by their bind address', () => {
    expect(forwards.map((forward) => specText(forward.spec))).toEqual(['0.0.0.0:9000:localhost:3000', '127.0.0.1:8080:localhost:80', '127.0.0.1:1080', '0.0.0.0:1080', '[::1]:8443:[::1]:443']);
  });
});

describe('forwardStatus', () => {
  it('shows where each listens: here for -L and -D once bound, on the server for -R once granted', () => {
    expect(forwards.map((forward) => forwardStatus(forward).listening)).toEqual(['0.0.0.0:9000', '127.0.0.1:8080', undefined, undefined, '[::1]:8443']);
    expect(forwardStatus(forwards[1]!)).toEqual({ id: '1', kind: 'L', spec: '127.0.0.1:8080:localhost:80', listening: '127.0.0.1:8080', connections: 0, connectionsTotal: 0, bytesIn: 0, bytesOut: 0 });
  });

  it('says which PROXY header a -R target gets, and nothing when none', () => {
    expect(forwardStatus(forwards[0]!)).toMatchObject({ spec: '0.0.0.0:9000:localhost:3000', proxyProtocol: 'v2' });
    expect(forwardStatus(forwards[3]!)).not.toHaveProperty('proxyProtocol');
    expect(formatForwards([forwardStatus(forwards[0]!)])).toContain('-R 0.0.0.0:9000:localhost:3000,proxy-protocol=v2');
  });
});

describe('findForward', () => {
  it('takes an id first', () => {
    expect(findForward(forwards, '2').id).toBe(2);
  });

  it('takes any spelling of a spec, with or without its flag', () => {
    expect(findForward(forwards, '8080:localhost:80').id).toBe(1);
    expect(findForward(forwards, '-L 127.0.0.1:8080:localhost:80').id).toBe(1);
    expect(findForward(forwards, '-R 9000:localhost:3000').id).toBe(0);
    expect(findForward(forwards, '-L [::1]:8443:[::1]:443').id).toBe(4);
    expect(findForward(forwards, '-D 1080').id).toBe(2);
    expect(findForward(forwards, '-R 1080').id).toBe(3);
  });

  it('refuses a spec that fits two forwards, naming both', () => {
    // "1080" is -D 127.0.0.1:1080 and reverse dynamic -R 0.0.0.0:1080 (and no id).
    const error = thrown(() => findForward(forwards, '1080'));
    expect(error.code).toBe('ERR_MUXTUN_CONTROL_BAD_REQUEST');
    expect(error.message).toContain('-D 127.0.0.1:1080 (id 2) and -R 0.0.0.0:1080 (id 3)');
  });

  it('says not found for a spec held by no forward, and why for a malformed one', () => {
    expect(thrown(() => findForward(forwards, '-L 8081:localhost:80')).code).toBe('ERR_MUXTUN_CONTROL_NOT_FOUND');
    expect(thrown(() => findForward(forwards, '-L 8081:localhost')).code).toBe('ERR_MUXTUN_CONTROL_BAD_REQUEST');
  });
});

describe('findSession', () => {
  const idle = { connections: 0, connectionsTotal: 0, bytesIn: 0, bytesOut: 0 };
  const session = (sessionId: string): SessionInfo => ({
    sessionId,
    user: 'alice',
    clientId: 'c',
    remote: null,
    lastRemote: '127.0.0.1:1',
    since: new Date(0),
    rttMs: null,
    minRttMs: null,
    remoteListeners: 0,
    listeners: [],
    streams: 0,
    conns: 0,
    detached: true,
    traffic: { L: idle, R: idle, D: idle },
  });
  const sessions = [session('3f2a9c1e-0000-4000-8000-000000000001'), session('3f2a9c1e-1111-4000-8000-000000000002'), session('77777777-0000-4000-8000-000000000003')];

  it('takes the id, or a unique prefix of at least 8 characters', () => {
    expect(findSession(sessions, '3f2a9c1e-1111-4000-8000-000000000002').sessionId).toBe(sessions[1]!.sessionId);
    expect(findSession(sessions, '77777777').sessionId).toBe(sessions[2]!.sessionId);
    expect(thrown(() => findSession(sessions, '7777777')).code).toBe('ERR_MUXTUN_CONTROL_NOT_FOUND');
  });

  it('refuses a prefix that fits several', () => {
    expect(thrown(() => findSession(sessions, '3f2a9c1e')).code).toBe('ERR_MUXTUN_CONTROL_BAD_REQUEST');
  });
});
