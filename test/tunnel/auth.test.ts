import { describe, expect, it } from 'vitest';
import { tokensEqual } from '../../src/tunnel/auth.js';

describe('tokensEqual', () => {
  it('is true only for identical tokens, whatever their lengths', () => {
    expect(tokensEqual('secret', 'secret')).toBe(true);
    expect(tokensEqual('secret', 'secreT')).toBe(false);
    expect(tokensEqual('secret', 'secret-longer')).toBe(false);
    expect(tokensEqual('', 'x')).toBe(false);
  });
});
