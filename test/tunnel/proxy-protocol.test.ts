/**
 * PROXY protocol headers against literal bytes from haproxy's
 * proxy-protocol.txt: v1 lines, v2 signature, version/command, family,
 * length, addresses (source then destination) and ports, big-endian.
 */
import { describe, expect, it } from 'vitest';
import { encodeProxyHeader, parseAddressPort, proxyHeaderFor } from '../../src/tunnel/proxy-protocol.js';

const SIGNATURE = '0d0a0d0a000d0a515549540a';
const hex = (buffer: Buffer): string => buffer.toString('hex');

describe('PROXY protocol v1', () => {
  it('writes TCP4 with source then destination, addresses before ports', () => {
    const header = encodeProxyHeader('v1', { address: '192.168.0.1', port: 56324 }, { address: '192.168.0.11', port: 443 });
    expect(header.toString('latin1')).toBe('PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n');
  });

  it('writes TCP6', () => {
    const header = encodeProxyHeader('v1', { address: '2001:db8::1', port: 1234 }, { address: '::1', port: 80 });
    expect(header.toString('latin1')).toBe('PROXY TCP6 2001:db8::1 ::1 1234 80\r\n');
  });

  it('writes IPv4-mapped IPv6 ends (a dual-stack listener) as TCP4', () => {
    const header = encodeProxyHeader('v1', { address: '::ffff:10.0.0.2', port: 5000 }, { address: '::ffff:10.0.0.1', port: 9000 });
    expect(header.toString('latin1')).toBe('PROXY TCP4 10.0.0.2 10.0.0.1 5000 9000\r\n');
  });

  it('maps the IPv4 end when the two ends differ in family', () => {
    const header = encodeProxyHeader('v1', { address: '10.0.0.2', port: 5000 }, { address: '::1', port: 9000 });
    expect(header.toString('latin1')).toBe('PROXY TCP6 ::ffff:10.0.0.2 ::1 5000 9000\r\n');
  });

  it('writes UNKNOWN for an end that is missing or not an IP address', () => {
    expect(encodeProxyHeader('v1', undefined, { address: '127.0.0.1', port: 1 }).toString('latin1')).toBe('PROXY UNKNOWN\r\n');
    expect(encodeProxyHeader('v1', { address: 'example.com', port: 1 }, { address: '127.0.0.1', port: 1 }).toString('latin1')).toBe('PROXY UNKNOWN\r\n');
  });
});

describe('PROXY protocol v2', () => {
  it('writes PROXY TCP4: 0x21, 0x11, length 12, addresses then ports', () => {
    const header = encodeProxyHeader('v2', { address: '192.168.0.1', port: 56324 }, { address: '192.168.0.11', port: 443 });
    expect(hex(header)).toBe(`${SIGNATURE}21 11 000c c0a80001 c0a8000b dc04 01bb`.replace(/ /g, ''));
  });

  it('writes PROXY TCP6: 0x21, 0x21, length 36', () => {
    const header = encodeProxyHeader('v2', { address: '2001:db8::1', port: 1234 }, { address: '::1', port: 80 });
    expect(hex(header)).toBe(`${SIGNATURE}21 21 0024 20010db8000000000000000000000001 00000000000000000000000000000001 04d2 0050`.replace(/ /g, ''));
  });

  it('expands :: in the middle and at either end, and an IPv4 tail', () => {
    const header = encodeProxyHeader('v2', { address: 'fe80::1:2', port: 1 }, { address: '::ffff:1.2.3.4', port: 2 });
    // The destination alone is IPv4-mapped: mixed families go as IPv6.
    expect(hex(header.subarray(16, 48))).toBe('fe800000000000000000000000010002' + '00000000000000000000ffff01020304');
    const full = encodeProxyHeader('v2', { address: '1:2:3:4:5:6:7:8', port: 1 }, { address: '1::', port: 2 });
    expect(hex(full.subarray(16, 48))).toBe('00010002000300040005000600070008' + '00010000000000000000000000000000');
  });

  it('drops a zone id, which the header cannot carry', () => {
    const header = encodeProxyHeader('v2', { address: 'fe80::1%eth0', port: 1 }, { address: 'fe80::2%eth0', port: 2 });
    expect(hex(header.subarray(16, 32))).toBe('fe800000000000000000000000000001');
  });

  it('writes LOCAL with family UNSPEC and no addresses when an end is unknown', () => {
    expect(hex(encodeProxyHeader('v2', undefined, undefined))).toBe(`${SIGNATURE}20000000`);
  });
});

describe('addresses as stream headers carry them', () => {
  it('parses address:port, IPv6 unbracketed (split at the last colon) or bracketed', () => {
    expect(parseAddressPort('127.0.0.1:8080')).toEqual({ address: '127.0.0.1', port: 8080 });
    expect(parseAddressPort('::1:8080')).toEqual({ address: '::1', port: 8080 });
    expect(parseAddressPort('[::1]:8080')).toEqual({ address: '::1', port: 8080 });
    expect(parseAddressPort('::ffff:10.1.2.3:7')).toEqual({ address: '::ffff:10.1.2.3', port: 7 });
  });

  it.each(['', '127.0.0.1', 'localhost:80', '127.0.0.1:', '127.0.0.1:65536', '127.0.0.1:-1', 'undefined:undefined', `${'1'.repeat(120)}:1`])('refuses %j', (text) => {
    expect(parseAddressPort(text)).toBeNull();
  });

  it('builds a header from the texts, UNKNOWN when one does not parse', () => {
    expect(proxyHeaderFor('v1', '127.0.0.1:5000', '127.0.0.1:9000').toString('latin1')).toBe('PROXY TCP4 127.0.0.1 127.0.0.1 5000 9000\r\n');
    expect(proxyHeaderFor('v1', 'undefined:undefined', '127.0.0.1:9000').toString('latin1')).toBe('PROXY UNKNOWN\r\n');
    expect(proxyHeaderFor('v1', '127.0.0.1:5000', undefined).toString('latin1')).toBe('PROXY UNKNOWN\r\n');
  });
});
