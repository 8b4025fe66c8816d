/**
 * The CLI's address syntax: -L/-R forward specs (ssh's [bind:]port:host:hostport),
 * the server's HOST:PORT, and ports. Every error is a usage error whose
 * message names the flag, the input and the part that is wrong.
 */
import { describe, expect, it } from 'vitest';
import { thrown } from '../support/wait.js';
import { parseDynamicSpec, parseForwardSpec, parsePort, parseServerAddress } from '../../src/cli/forward-spec.js';

const USAGE = 'ERR_MUXTUN_USAGE';


function expectUsage(run: () => unknown, message: string): void {
  const error = thrown(run);
  expect(error.code).toBe(USAGE);
  expect(error.message).toBe(message);
}

describe('parseForwardSpec', () => {
  it.each([
    ['-L', '8080:localhost:80', { bindHost: '127.0.0.1', bindPort: 8080, targetHost: 'localhost', targetPort: 80 }],
    ['-R', '9000:localhost:3000', { bindHost: '0.0.0.0', bindPort: 9000, targetHost: 'localhost', targetPort: 3000 }],
    ['-L', '0.0.0.0:8080:db.internal:5432', { bindHost: '0.0.0.0', bindPort: 8080, targetHost: 'db.internal', targetPort: 5432 }],
    ['-R', '127.0.0.1:9000:10.0.0.2:22', { bindHost: '127.0.0.1', bindPort: 9000, targetHost: '10.0.0.2', targetPort: 22 }],
    ['-L', '[::1]:8080:[2001:db8::1]:80', { bindHost: '::1', bindPort: 8080, targetHost: '2001:db8::1', targetPort: 80 }],
    ['-R', '[::]:9000:localhost:3000', { bindHost: '::', bindPort: 9000, targetHost: 'localhost', targetPort: 3000 }],
    ['-L', '8080:[::1]:80', { bindHost: '127.0.0.1', bindPort: 8080, targetHost: '::1', targetPort: 80 }],
    ['-L', '1:h:65535', { bindHost: '127.0.0.1', bindPort: 1, targetHost: 'h', targetPort: 65535 }],
    ['-L', '65535:h:1', { bindHost: '127.0.0.1', bindPort: 65535, targetHost: 'h', targetPort: 1 }],
  ] as const)('%s %s', (flag, text, spec) => {
    expect(parseForwardSpec(flag, text)).toEqual(spec);
  });

  it('takes port 0 (any free port) for the listening port of -L and -R', () => {
    expect(parseForwardSpec('-L', '0:localhost:80').bindPort).toBe(0);
    expect(parseForwardSpec('-R', '0.0.0.0:0:localhost:80').bindPort).toBe(0);
  });

  it('refuses port 0 for the target port', () => {
    expectUsage(() => parseForwardSpec('-L', '8080:localhost:0'), '-L 8080:localhost:0: target port: port 0 is out of range (1-65535)');
    expectUsage(() => parseForwardSpec('-R', '9000:localhost:0'), '-R 9000:localhost:0: target port: port 0 is out of range (1-65535)');
  });

  it('accepts a host of 253 characters and refuses 254', () => {
    const longest = 'h'.repeat(253);
    expect(parseForwardSpec('-L', `8080:${longest}:80`).targetHost).toBe(longest);
    const tooLong = 'h'.repeat(254);
    expectUsage(() => parseForwardSpec('-L', `8080:${tooLong}:80`), `-L 8080:${tooLong}:80: target host: "${tooLong}" is not a host name or address`);
  });

  it.each([
    ['-L', '80', 'got 1 part'],
    ['-L', '', 'got 1 part'],
    ['-L', 'a:1:b:2:c', 'got 5 parts'],
    // IPv6 without brackets splits into too many parts.
    ['-L', '8080:::1:80', 'got 5 parts'],
  ] as const)('%s %j: the wrong number of parts', (flag, text, got) => {
    expectUsage(() => parseForwardSpec(flag, text), `${flag} ${text}: expected [bind:]port:host:hostport (for example 8080:localhost:80), ${got}`);
  });

  it.each([
    ['-R', 'x:y:z', 'listening port: "x" is not a port number'],
    ['-L', '80a:localhost:80', 'listening port: "80a" is not a port number'],
    ['-L', '-1:localhost:80', 'listening port: "-1" is not a port number'],
    ['-L', ':localhost:80', 'listening port: "" is not a port number'],
    ['-L', '70000:localhost:80', 'listening port: port 70000 is out of range (0-65535)'],
    ['-R', '9000:localhost:70000', 'target port: port 70000 is out of range (1-65535)'],
    ['-R', '9000:localhost:http', 'target port: "http" is not a port number'],
    ['-L', '8080:localhost:', 'target port: "" is not a port number'],
    ['-L', '8080::80', 'target host: the host is empty'],
    ['-L', '8080:[]:80', 'target host: the host is empty'],
    ['-L', '8080:local host:80', 'target host: "local host" is not a host name or address'],
    ['-L', '8080:a/b:80', 'target host: "a/b" is not a host name or address'],
    ['-L', ':8080:localhost:80', 'bind address: the host is empty'],
    ['-R', '[]:9000:localhost:80', 'bind address: the host is empty'],
    ['-R', 'any where:9000:localhost:80', 'bind address: "any where" is not a host name or address'],
  ] as const)('%s %j: %s', (flag, text, why) => {
    expectUsage(() => parseForwardSpec(flag, text), `${flag} ${text}: ${why}`);
  });
});

describe('dynamic forwards: -D [bind:]port and -R [bind:]port (reverse dynamic, as OpenSSH 7.6+)', () => {
  it.each([
    ['1080', { bindHost: '127.0.0.1', bindPort: 1080 }],
    ['0.0.0.0:1080', { bindHost: '0.0.0.0', bindPort: 1080 }],
    ['[::1]:0', { bindHost: '::1', bindPort: 0 }],
  ] as const)('-D %s', (text, spec) => {
    expect(parseDynamicSpec(text)).toEqual(spec);
  });

  it('-D refuses a target and a bad port, naming them', () => {
    expectUsage(() => parseDynamicSpec('1080:localhost:80'), '-D 1080:localhost:80: expected [bind:]port (for example 1080 or 0.0.0.0:1080)');
    expectUsage(() => parseDynamicSpec('socks'), '-D socks: listening port: "socks" is not a port number');
  });

  it.each([
    ['9000', { bindHost: '0.0.0.0', bindPort: 9000, targetHost: '', targetPort: 0, dynamic: true }],
    ['127.0.0.1:9000', { bindHost: '127.0.0.1', bindPort: 9000, targetHost: '', targetPort: 0, dynamic: true }],
  ] as const)('-R %s', (text, spec) => {
    expect(parseForwardSpec('-R', text)).toEqual(spec);
  });

  it('-R 9000:3000 is a forgotten target host, not a bind address "9000"', () => {
    expectUsage(() => parseForwardSpec('-R', '9000:3000'), '-R 9000:3000: expected [bind:]port:host:hostport, or [bind:]port for reverse dynamic (SOCKS); "9000" is not a bind address');
  });
});

describe('-R ...,proxy-protocol=v1|v2|off: one forward\'s PROXY header', () => {
  it.each(['v1', 'v2', 'off'] as const)('takes %s', (version) => {
    expect(parseForwardSpec('-R', `9000:localhost:3000,proxy-protocol=${version}`)).toEqual({ bindHost: '0.0.0.0', bindPort: 9000, targetHost: 'localhost', targetPort: 3000, proxyProtocol: version });
    expect(parseForwardSpec('-R', `[::1]:9000:[::1]:3000,proxy-protocol=${version}`)).toMatchObject({ bindHost: '::1', targetHost: '::1', proxyProtocol: version });
  });

  it('refuses another version, another option, -L, and a reverse dynamic -R, naming them', () => {
    expectUsage(() => parseForwardSpec('-R', '9000:localhost:3000,proxy-protocol=v3'), '-R 9000:localhost:3000,proxy-protocol=v3: proxy-protocol is v1, v2 or off, not "v3"');
    expectUsage(() => parseForwardSpec('-R', '9000:localhost:3000,fast'), '-R 9000:localhost:3000,fast: expected [bind:]port:host:hostport[,proxy-protocol=v1|v2|off]; ",fast" is not understood');
    expectUsage(() => parseForwardSpec('-L', '8080:localhost:80,proxy-protocol=v1'), '-L 8080:localhost:80,proxy-protocol=v1: expected [bind:]port:host:hostport; ",proxy-protocol=v1" is not understood');
    expectUsage(() => parseForwardSpec('-R', '9000,proxy-protocol=v2'), '-R 9000,proxy-protocol=v2: a reverse dynamic -R (SOCKS) takes no proxy-protocol: its targets are whatever clients ask for');
  });
});

describe('parseServerAddress', () => {
  it.each([
    ['tunnel.example.com:4443', { host: 'tunnel.example.com', port: 4443 }],
    ['127.0.0.1:1', { host: '127.0.0.1', port: 1 }],
    ['[::1]:4443', { host: '::1', port: 4443 }],
    ['[2001:db8::1]:65535', { host: '2001:db8::1', port: 65535 }],
  ])('parses %j', (text, address) => {
    expect(parseServerAddress(text, 'server address')).toEqual(address);
  });

  it.each(['tunnel.example.com', 'host:', ':4443', ''])('refuses %j without HOST:PORT, quoting it', (text) => {
    expectUsage(() => parseServerAddress(text, 'MUXTUN_SERVER'), `MUXTUN_SERVER: expected HOST:PORT (for example tunnel.example.com:4443), got "${text}"`);
  });

  it.each([
    ['host:0', 'port 0 is out of range (1-65535)'],
    ['127.0.0.1:70000', 'port 70000 is out of range (1-65535)'],
    ['host:https', '"https" is not a port number'],
    ['[]:4443', 'the host is empty'],
    ['a b:4443', '"a b" is not a host name or address'],
  ])('refuses %j: %s', (text, why) => {
    expectUsage(() => parseServerAddress(text, 'server address'), `server address: ${why}`);
  });
});

describe('parsePort', () => {
  it('parses 1 to 65535, and 0 only when allowed', () => {
    expect(parsePort('1', '--port')).toBe(1);
    expect(parsePort('65535', '--port')).toBe(65535);
    expect(parsePort('0', '--port', true)).toBe(0);
    expect(parsePort('4443', '--port', true)).toBe(4443);
  });

  it('names the range it checks against', () => {
    expectUsage(() => parsePort('0', '--port'), '--port: port 0 is out of range (1-65535)');
    expectUsage(() => parsePort('65536', '--port'), '--port: port 65536 is out of range (1-65535)');
    expectUsage(() => parsePort('65536', '--port', true), '--port: port 65536 is out of range (0-65535)');
  });

  it.each(['', ' 80', '80 ', '-1', '+80', '8.0', '0x50', '1e3', 'eighty'])('refuses %j as not a port number', (text) => {
    expectUsage(() => parsePort(text, '--port', true), `--port: "${text}" is not a port number`);
  });
});
