import { describe, expect, it } from 'vitest';
import { parseMetricsAddress } from '../../src/cli/metrics-option.js';
import { thrown } from '../support/wait.js';

describe('--metrics [host:]port', () => {
  it.each([
    ['9100', { host: '127.0.0.1', port: 9100 }],
    ['0', { host: '127.0.0.1', port: 0 }],
    ['0.0.0.0:9100', { host: '0.0.0.0', port: 9100 }],
    ['[::1]:9100', { host: '::1', port: 9100 }],
    ['metrics.internal:80', { host: 'metrics.internal', port: 80 }],
  ])('%s', (text, address) => {
    expect(parseMetricsAddress(text, '--metrics')).toEqual(address);
  });

  it.each([
    ['99999', '--metrics 99999: port 99999 is out of range (0-65535)'],
    ['x', '--metrics x: "x" is not a port number'],
    [':9100', '--metrics :9100: "" is not a host to listen on'],
  ])('refuses %s, naming the flag and the value', (text, message) => {
    expect(thrown(() => parseMetricsAddress(text, '--metrics')).message).toBe(message);
  });
});
