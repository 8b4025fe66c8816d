/**
 * The server's forwarding policy: parsing `--allow-local` / `--allow-remote`
 * values and deciding whether one -L target or -R port is allowed.
 */
import { describe, expect, it } from 'vitest';
import { thrown } from '../support/wait.js';
import { checkLocalTarget, checkRemotePort, defaultPolicy, parsePortRange, parseTargetPattern, type ServerPolicy } from '../../src/tunnel/policy.js';

const POLICY = 'ERR_MUXTUN_POLICY';


describe('parsePortRange', () => {
  it.each([
    ['80', { from: 80, to: 80 }],
    ['1', { from: 1, to: 1 }],
    ['65535', { from: 65535, to: 65535 }],
    ['8000-8100', { from: 8000, to: 8100 }],
    ['9000-9000', { from: 9000, to: 9000 }],
    ['1-65535', { from: 1, to: 65535 }],
    ['*', { from: 1, to: 65535 }],
    [' 443 ', { from: 443, to: 443 }],
    [' * ', { from: 1, to: 65535 }],
  ])('parses %j', (text, range) => {
    expect(parsePortRange(text)).toEqual(range);
  });

  it.each([
    ['', '""'],
    ['http', '"http"'],
    ['-1', '""'],
    ['80-', '""'],
    ['8o', '"8o"'],
    ['123456', '"123456"'],
    ['80-x', '"x"'],
    ['1.5', '"1.5"'],
    ['+80', '"+80"'],
    ['80-90-100', '"90-100"'],
  ])('refuses %j as not a port number', (text, part) => {
    const error = thrown(() => parsePortRange(text, '--allow-remote "x"'));
    expect(error.code).toBe(POLICY);
    expect(error.message).toBe(`--allow-remote "x": ${part} is not a port number`);
  });

  it.each([
    ['0', 0],
    ['65536', 65536],
    ['99999', 99999],
    ['0-80', 0],
    ['80-70000', 70000],
  ])('refuses %j as out of range', (text, port) => {
    const error = thrown(() => parsePortRange(text));
    expect(error.code).toBe(POLICY);
    expect(error.message).toBe(`port range: port ${port} is out of range 1-65535`);
  });

  it('refuses a range that starts after it ends, quoting the input', () => {
    const error = thrown(() => parsePortRange('9100-9000', '--allow-remote "9100-9000"'));
    expect(error.code).toBe(POLICY);
    expect(error.message).toBe('--allow-remote "9100-9000": "9100-9000" starts after it ends');
  });

  it('names what it parses with "port range" by default', () => {
    expect(thrown(() => parsePortRange('nope')).message).toBe('port range: "nope" is not a port number');
  });
});

describe('parseTargetPattern', () => {
  it.each([
    ['db.internal:5432', { host: 'db.internal', ports: { from: 5432, to: 5432 } }],
    ['localhost:*', { host: 'localhost', ports: { from: 1, to: 65535 } }],
    ['*:443', { host: '*', ports: { from: 443, to: 443 } }],
    ['*:*', { host: '*', ports: { from: 1, to: 65535 } }],
    ['*.internal:8000-9000', { host: '*.internal', ports: { from: 8000, to: 9000 } }],
    ['[::1]:80', { host: '::1', ports: { from: 80, to: 80 } }],
    ['[fe80::1]:*', { host: 'fe80::1', ports: { from: 1, to: 65535 } }],
    ['10.0.0.5:22', { host: '10.0.0.5', ports: { from: 22, to: 22 } }],
    ['DB.Internal:5432', { host: 'db.internal', ports: { from: 5432, to: 5432 } }],
    ['*.EXAMPLE.com:443', { host: '*.example.com', ports: { from: 443, to: 443 } }],
  ])('parses %j', (text, pattern) => {
    expect(parseTargetPattern(text)).toEqual(pattern);
  });

  it.each(['db.internal', '', ':80', '*', '5432'])('refuses %j without HOST:PORT, naming the input', (text) => {
    const error = thrown(() => parseTargetPattern(text));
    expect(error.code).toBe(POLICY);
    expect(error.message).toBe(`--allow-local "${text}": expected HOST:PORT (use * for any host or port)`);
  });

  it.each([
    ['db.internal:', '""'],
    ['db.internal:pg', '"pg"'],
  ])('refuses %j with a bad port, naming the input', (text, part) => {
    const error = thrown(() => parseTargetPattern(text));
    expect(error.code).toBe(POLICY);
    expect(error.message).toBe(`--allow-local "${text}": ${part} is not a port number`);
  });

  it('refuses an IPv6 address without a port, naming the input', () => {
    const error = thrown(() => parseTargetPattern('[::1]'));
    expect(error.code).toBe(POLICY);
    expect(error.message).toMatch(/^--allow-local "\[::1\]": .* is not a port number$/);
  });

  it('refuses an out-of-range port and a backwards range, naming the input', () => {
    const high = thrown(() => parseTargetPattern('db:70000'));
    expect(high.code).toBe(POLICY);
    expect(high.message).toBe('--allow-local "db:70000": port 70000 is out of range 1-65535');
    const backwards = thrown(() => parseTargetPattern('db:9000-8000'));
    expect(backwards.code).toBe(POLICY);
    expect(backwards.message).toBe('--allow-local "db:9000-8000": "9000-8000" starts after it ends');
  });
});

const policy = (allowLocal: string[], allowRemote: string[] = ['1024-65535']): ServerPolicy => ({
  allowLocal: allowLocal.map(parseTargetPattern),
  allowRemote: allowRemote.map((text) => parsePortRange(text)),
});

describe('checkLocalTarget', () => {
  it('allows any target when the allow list is empty (the default)', () => {
    expect(defaultPolicy.allowLocal).toEqual([]);
    for (const [host, port] of [['localhost', 80], ['10.0.0.1', 1], ['::1', 65535], ['anything.example', 22]] as const) {
      expect(checkLocalTarget(defaultPolicy, host, port)).toBeNull();
    }
  });

  it('allows exactly the listed host and port', () => {
    const p = policy(['db.internal:5432']);
    expect(checkLocalTarget(p, 'db.internal', 5432)).toBeNull();
    expect(checkLocalTarget(p, 'db.internal', 5433)).toBe("the server's --allow-local does not include db.internal:5433");
    expect(checkLocalTarget(p, 'web.internal', 5432)).toBe("the server's --allow-local does not include web.internal:5432");
  });

  it('matches host names without regard to case', () => {
    const p = policy(['DB.internal:5432']);
    expect(checkLocalTarget(p, 'db.INTERNAL', 5432)).toBeNull();
    expect(checkLocalTarget(p, 'Db.Internal', 5432)).toBeNull();
  });

  it('matches port ranges inclusively at both ends', () => {
    const p = policy(['svc:8000-8100']);
    expect(checkLocalTarget(p, 'svc', 8000)).toBeNull();
    expect(checkLocalTarget(p, 'svc', 8100)).toBeNull();
    expect(checkLocalTarget(p, 'svc', 7999)).not.toBeNull();
    expect(checkLocalTarget(p, 'svc', 8101)).not.toBeNull();
  });

  it('* matches any host, *.domain only names under that domain', () => {
    const any = policy(['*:443']);
    expect(checkLocalTarget(any, 'example.com', 443)).toBeNull();
    expect(checkLocalTarget(any, '192.0.2.1', 443)).toBeNull();
    expect(checkLocalTarget(any, 'example.com', 80)).not.toBeNull();

    const suffix = policy(['*.internal:*']);
    expect(checkLocalTarget(suffix, 'db.internal', 5432)).toBeNull();
    expect(checkLocalTarget(suffix, 'a.b.INTERNAL', 1)).toBeNull();
    // The domain itself and look-alikes are not under it.
    expect(checkLocalTarget(suffix, 'internal', 80)).not.toBeNull();
    expect(checkLocalTarget(suffix, 'evilinternal', 80)).not.toBeNull();
    expect(checkLocalTarget(suffix, 'db.internal.example.com', 80)).not.toBeNull();
  });

  it('matches an IPv6 target written with or without brackets', () => {
    const p = policy(['[::1]:80']);
    expect(checkLocalTarget(p, '::1', 80)).toBeNull();
    expect(checkLocalTarget(p, '[::1]', 80)).toBeNull();
    expect(checkLocalTarget(p, '::2', 80)).not.toBeNull();
  });

  it('allows a target any one of several patterns allows', () => {
    const p = policy(['db.internal:5432', '*.cache:6379']);
    expect(checkLocalTarget(p, 'db.internal', 5432)).toBeNull();
    expect(checkLocalTarget(p, 'a.cache', 6379)).toBeNull();
    expect(checkLocalTarget(p, 'a.cache', 5432)).toBe("the server's --allow-local does not include a.cache:5432");
  });
});

describe('checkRemotePort', () => {
  it('by default allows the unprivileged ports only', () => {
    expect(checkRemotePort(defaultPolicy, 1024)).toBeNull();
    expect(checkRemotePort(defaultPolicy, 65535)).toBeNull();
    expect(checkRemotePort(defaultPolicy, 1023)).toBe("the server's --allow-remote does not include port 1023 (allowed: 1024-65535)");
    expect(checkRemotePort(defaultPolicy, 22)).toBe("the server's --allow-remote does not include port 22 (allowed: 1024-65535)");
  });

  it('allows port 0 (any free port) whenever some range is allowed', () => {
    expect(checkRemotePort(defaultPolicy, 0)).toBeNull();
    expect(checkRemotePort(policy([], ['9000']), 0)).toBeNull();
  });

  it('refuses everything, port 0 included, when no range is allowed, and says none is', () => {
    const none = policy([], []);
    expect(checkRemotePort(none, 0)).toBe("the server's --allow-remote does not include port 0 (allowed: none)");
    expect(checkRemotePort(none, 9000)).toBe("the server's --allow-remote does not include port 9000 (allowed: none)");
  });

  it('lists every allowed range, single ports without a dash', () => {
    const p = policy([], ['9000-9100', '8080', '*']);
    expect(checkRemotePort(p, 9050)).toBeNull();
    expect(checkRemotePort(p, 80)).toBeNull();
    const narrow = policy([], ['9000-9100', '8080']);
    expect(checkRemotePort(narrow, 8080)).toBeNull();
    expect(checkRemotePort(narrow, 9100)).toBeNull();
    expect(checkRemotePort(narrow, 9101)).toBe("the server's --allow-remote does not include port 9101 (allowed: 9000-9100, 8080)");
    expect(checkRemotePort(narrow, 8999)).toBe("the server's --allow-remote does not include port 8999 (allowed: 9000-9100, 8080)");
  });
});
