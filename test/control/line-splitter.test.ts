import { describe, expect, it } from 'vitest';
import { LineSplitter } from '../../src/control/line-splitter.js';

describe('LineSplitter', () => {
  it('gives the same lines however the bytes are split, including inside a UTF-8 character', () => {
    const text = Buffer.from('{"a":"é€"}\r\nsecond\n\nthird', 'utf8');
    for (let cut = 0; cut <= text.length; cut++) {
      const splitter = new LineSplitter(100);
      const first = splitter.push(text.subarray(0, cut));
      const second = splitter.push(text.subarray(cut));
      expect([...first.lines, ...second.lines], `cut at ${cut}`).toEqual(['{"a":"é€"}', 'second', '']);
      expect(splitter.end()).toBe('third');
      expect(splitter.end()).toBeUndefined();
    }
  });

  it('reports overflow once an unfinished line passes the bound, after the complete lines before it', () => {
    const splitter = new LineSplitter(8);
    expect(splitter.push(Buffer.from('12345678\n1234'))).toEqual({ lines: ['12345678'], overflow: false });
    expect(splitter.push(Buffer.from('5678'))).toEqual({ lines: [], overflow: false });
    expect(splitter.push(Buffer.from('9'))).toEqual({ lines: [], overflow: true });
    expect(new LineSplitter(4).push(Buffer.from('ok\n123456\n'))).toEqual({ lines: ['ok'], overflow: true });
  });
});
