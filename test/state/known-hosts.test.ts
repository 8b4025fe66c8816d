import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  HostKeyMismatchError,
  MAX_KNOWN_HOSTS_BYTES,
  checkKnownHost,
  defaultKnownHostsFile,
  recordKnownHost,
} from '../../src/state/index.js';
import { formatHostPort } from '../../src/util/host-port.js';
import { fileMode, tempDir } from '../support/fs.js';
import { rejection } from '../support/wait.js';

const FP_A = `sha256:${'a'.repeat(64)}`;
const FP_B = `sha256:${'b'.repeat(64)}`;

describe('defaultKnownHostsFile', () => {
  it('follows XDG_CONFIG_HOME, falling back to ~/.config', () => {
    expect(defaultKnownHostsFile({ XDG_CONFIG_HOME: '/cfg' }, '/home/u')).toBe('/cfg/muxtun/known_hosts');
    expect(defaultKnownHostsFile({}, '/home/u')).toBe('/home/u/.config/muxtun/known_hosts');
    expect(defaultKnownHostsFile({ XDG_CONFIG_HOME: 'rel' }, '/home/u')).toBe('/home/u/.config/muxtun/known_hosts');
  });
});

describe('formatHostPort', () => {
  it('lowercases names and brackets IPv6 literals', () => {
    expect(formatHostPort('Example.COM', 7000)).toBe('example.com:7000');
    expect(formatHostPort('127.0.0.1', 1)).toBe('127.0.0.1:1');
    expect(formatHostPort('::1', 443)).toBe('[::1]:443');
    expect(formatHostPort('[::1]', 443)).toBe('[::1]:443');
  });

  it('rejects bad ports and hosts', () => {
    expect(() => formatHostPort('h', 0)).toThrow(expect.objectContaining({ code: 'ERR_MUXTUN_INVALID_ARGUMENT' }));
    expect(() => formatHostPort('h', 65536)).toThrow(expect.objectContaining({ code: 'ERR_MUXTUN_INVALID_ARGUMENT' }));
    expect(() => formatHostPort('a b', 1)).toThrow(expect.objectContaining({ code: 'ERR_MUXTUN_INVALID_ARGUMENT' }));
  });
});

describe('known_hosts', () => {
  it('knows no hosts when the file does not exist', async () => {
    const file = join(await tempDir(), 'missing', 'known_hosts');
    expect(await checkKnownHost(file, 'example.com:7000', FP_A)).toBe('unknown');
  });

  it('records a host (dirs 0700, file 0600), then matches it', async () => {
    const file = join(await tempDir(), 'config', 'muxtun', 'known_hosts');
    expect(await recordKnownHost(file, 'example.com:7000', FP_A)).toBe(true);
    expect(await fileMode(join(file, '..'))).toBe(0o700);
    expect(await fileMode(file)).toBe(0o600);
    expect(await readFile(file, 'utf8')).toMatch(/^# .*\nexample\.com:7000 sha256:a{64}\n$/);

    expect(await checkKnownHost(file, 'example.com:7000', FP_A)).toBe('match');
    expect(await checkKnownHost(file, 'EXAMPLE.com:7000', FP_A.toUpperCase().replace('SHA256', 'sha256'))).toBe(
      'match',
    );
    // The port is part of the identity: another port is another server.
    expect(await checkKnownHost(file, 'example.com:7001', FP_B)).toBe('unknown');
    // Recording again adds nothing.
    expect(await recordKnownHost(file, 'example.com:7000', FP_A)).toBe(false);
    expect((await readFile(file, 'utf8')).split('\n').filter((line) => line.startsWith('example'))).toHaveLength(1);
  });

  it('refuses a changed fingerprint loudly, naming both fingerprints, the file and line', async () => {
    const file = join(await tempDir(), 'known_hosts');
    await writeFile(file, `# mine\n\n[::1]:7000 ${FP_B}\nexample.com:7000 ${FP_A}  # office\n`);
    const error = await rejection(checkKnownHost(file, 'example.com:7000', FP_B));
    expect(error).toBeInstanceOf(HostKeyMismatchError);
    expect(error.code).toBe('ERR_MUXTUN_HOST_KEY_CHANGED');
    const mismatch = error as HostKeyMismatchError;
    expect(mismatch).toMatchObject({ hostPort: 'example.com:7000', recorded: FP_A, presented: FP_B, file, line: 4 });
    expect(error.message).toContain('WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!');
    expect(error.message).toContain(FP_A);
    expect(error.message).toContain(FP_B);
    expect(error.message).toContain(`${file}:4`);
    expect(error.message).toContain(`remove line 4 from ${file}`);
    expect(error.message).toContain(`--fingerprint ${FP_B}`);
    expect(error.message.split('\n').length).toBeGreaterThan(5);
  });

  it('never appends a conflicting record', async () => {
    const file = join(await tempDir(), 'known_hosts');
    await recordKnownHost(file, '10.0.0.1:22', FP_A);
    const before = await readFile(file, 'utf8');
    const error = await rejection(recordKnownHost(file, '10.0.0.1:22', FP_B));
    expect(error.code).toBe('ERR_MUXTUN_HOST_KEY_CHANGED');
    expect(await readFile(file, 'utf8')).toBe(before);
  });

  it('appends on a new line when the file lacks a final newline, and reads CRLF files', async () => {
    const file = join(await tempDir(), 'known_hosts');
    await writeFile(file, `a.example:1 ${FP_A}\r\nb.example:1 ${FP_A}`);
    expect(await checkKnownHost(file, 'a.example:1', FP_A)).toBe('match');
    await recordKnownHost(file, 'c.example:1', FP_B);
    expect(await readFile(file, 'utf8')).toBe(`a.example:1 ${FP_A}\r\nb.example:1 ${FP_A}\nc.example:1 ${FP_B}\n`);
    expect(await checkKnownHost(file, 'b.example:1', FP_A)).toBe('match');
  });

  it.each([
    ['one field', 'example.com:7000', /expected 2 fields, found 1/],
    ['no port', `example.com ${FP_A}`, /"example.com" is not host:port/],
    ['bad fingerprint', 'example.com:7000 sha256:xyz', /"x" is not a hex digit/],
  ])('refuses a malformed line (%s) naming file and line', async (_name, line, pattern) => {
    const file = join(await tempDir(), 'known_hosts');
    await writeFile(file, `# header\n${line}\n`);
    const error = await rejection(checkKnownHost(file, 'other.example:1', FP_A));
    expect(error.code).toBe('ERR_MUXTUN_KNOWN_HOSTS_INVALID');
    expect(error.message).toContain(`${file}:2:`);
    expect(error.message).toMatch(pattern);
  });

  it('refuses a file over the size limit', async () => {
    const file = join(await tempDir(), 'known_hosts');
    await writeFile(file, '#'.repeat(MAX_KNOWN_HOSTS_BYTES + 1));
    const error = await rejection(checkKnownHost(file, 'example.com:7000', FP_A));
    expect(error.code).toBe('ERR_MUXTUN_KNOWN_HOSTS_READ');
    expect(error.message).toContain(`${MAX_KNOWN_HOSTS_BYTES}-byte limit`);
  });

  it('rejects a malformed host:port key from the caller', async () => {
    const file = join(await tempDir(), 'known_hosts');
    const error = await rejection(recordKnownHost(file, 'example.com', FP_A));
    expect(error.code).toBe('ERR_MUXTUN_INVALID_ARGUMENT');
  });
});
