/** Validation of control requests: every line gives a typed request or an error response, never a throw. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CONTROL_METHODS, MAX_REASON_LENGTH, encodeRequest, parseRequest, type ParsedRequest } from '../../src/control/protocol.js';

function errorOf(parsed: ParsedRequest): { id: unknown; code: string; message: string } {
  if (parsed.ok) throw new Error(`expected an error, got ${JSON.stringify(parsed.request)}`);
  return { id: parsed.response.id, ...parsed.response.error };
}

describe('parseRequest', () => {
  it('accepts each method with its parameters, and echoes string and integer ids', () => {
    expect(parseRequest('{"id":1,"method":"status"}')).toEqual({ ok: true, request: { id: 1, method: 'status', params: undefined } });
    expect(parseRequest('{"id":"a","method":"forward.list","params":{}}')).toEqual({ ok: true, request: { id: 'a', method: 'forward.list', params: undefined } });
    expect(parseRequest('{"id":2,"method":"forward.add","params":{"kind":"R","spec":"9000:localhost:3000"}}')).toEqual({
      ok: true,
      request: { id: 2, method: 'forward.add', params: { kind: 'R', spec: '9000:localhost:3000' } },
    });
    expect(parseRequest('{"id":3,"method":"forward.remove","params":{"forward":"2"}}')).toMatchObject({ ok: true, request: { params: { forward: '2' } } });
    expect(parseRequest('{"id":4,"method":"session.list"}')).toMatchObject({ ok: true, request: { method: 'session.list' } });
    expect(parseRequest('{"id":5,"method":"session.close","params":{"session":"s1","reason":"maintenance"}}')).toMatchObject({
      ok: true,
      request: { params: { session: 's1', reason: 'maintenance' } },
    });
  });

  it('round-trips what encodeRequest writes', () => {
    const line = encodeRequest(7, 'forward.add', { kind: 'D', spec: '1080' });
    expect(line.endsWith('\n')).toBe(true);
    expect(parseRequest(line.trimEnd())).toEqual({ ok: true, request: { id: 7, method: 'forward.add', params: { kind: 'D', spec: '1080' } } });
  });

  it.each([
    ['not JSON', '{"id":1,', null, 'ERR_MUXTUN_CONTROL_BAD_REQUEST', /not valid JSON/],
    ['an array', '[1,2]', null, 'ERR_MUXTUN_CONTROL_BAD_REQUEST', /JSON object/],
    ['a string', '"status"', null, 'ERR_MUXTUN_CONTROL_BAD_REQUEST', /JSON object/],
    ['no id', '{"method":"status"}', null, 'ERR_MUXTUN_CONTROL_BAD_REQUEST', /"id"/],
    ['a fractional id', '{"id":1.5,"method":"status"}', null, 'ERR_MUXTUN_CONTROL_BAD_REQUEST', /"id"/],
    ['an object id', '{"id":{},"method":"status"}', null, 'ERR_MUXTUN_CONTROL_BAD_REQUEST', /"id"/],
    ['a too long id', JSON.stringify({ id: 'x'.repeat(129), method: 'status' }), null, 'ERR_MUXTUN_CONTROL_BAD_REQUEST', /"id"/],
    ['an unknown method', '{"id":1,"method":"shutdown"}', 1, 'ERR_MUXTUN_CONTROL_UNKNOWN_METHOD', /unknown method "shutdown"/],
    ['a method of the wrong type', '{"id":1,"method":3}', 1, 'ERR_MUXTUN_CONTROL_BAD_REQUEST', /"method"/],
    ['an unknown top-level key', '{"id":1,"method":"status","jsonrpc":"2.0"}', 1, 'ERR_MUXTUN_CONTROL_BAD_REQUEST', /unknown key "jsonrpc"/],
    ['a __proto__ key', '{"id":1,"method":"status","__proto__":{}}', 1, 'ERR_MUXTUN_CONTROL_BAD_REQUEST', /unknown key "__proto__"/],
    ['params for status', '{"id":1,"method":"status","params":{"all":true}}', 1, 'ERR_MUXTUN_CONTROL_BAD_REQUEST', /takes no parameters/],
    ['forward.add without params', '{"id":1,"method":"forward.add"}', 1, 'ERR_MUXTUN_CONTROL_BAD_REQUEST', /forward\.add: "params" must be an object/],
    ['forward.add with kind W', '{"id":1,"method":"forward.add","params":{"kind":"W","spec":"x:1"}}', 1, 'ERR_MUXTUN_CONTROL_BAD_REQUEST', /"kind"/],
    ['forward.add with a number spec', '{"id":1,"method":"forward.add","params":{"kind":"L","spec":8080}}', 1, 'ERR_MUXTUN_CONTROL_BAD_REQUEST', /"spec"/],
    ['forward.add with an empty spec', '{"id":1,"method":"forward.add","params":{"kind":"L","spec":""}}', 1, 'ERR_MUXTUN_CONTROL_BAD_REQUEST', /"spec"/],
    ['a spec with a newline', '{"id":1,"method":"forward.add","params":{"kind":"L","spec":"80\\n:x:1"}}', 1, 'ERR_MUXTUN_CONTROL_BAD_REQUEST', /control characters/],
    ['forward.add with an extra key', '{"id":1,"method":"forward.add","params":{"kind":"L","spec":"1:a:2","bind":"x"}}', 1, 'ERR_MUXTUN_CONTROL_BAD_REQUEST', /unknown key "bind"/],
    ['forward.remove with an array', '{"id":1,"method":"forward.remove","params":{"forward":["1"]}}', 1, 'ERR_MUXTUN_CONTROL_BAD_REQUEST', /"forward"/],
    ['session.close with a number reason', '{"id":"c","method":"session.close","params":{"session":"s","reason":5}}', 'c', 'ERR_MUXTUN_CONTROL_BAD_REQUEST', /"reason"/],
    ['session.close with a long reason', JSON.stringify({ id: 1, method: 'session.close', params: { session: 's', reason: 'r'.repeat(MAX_REASON_LENGTH + 1) } }), 1, 'ERR_MUXTUN_CONTROL_BAD_REQUEST', /"reason"/],
  ])('refuses %s', (_name, line, id, code, message) => {
    const error = errorOf(parseRequest(line));
    expect(error.id).toBe(id);
    expect(error.code).toBe(code);
    expect(error.message).toMatch(message);
  });

  it('never throws, and gives a well-formed request or a well-formed error for any line (fast-check)', () => {
    const method = fc.oneof(fc.constantFrom(...CONTROL_METHODS), fc.string());
    const jsonish = fc.oneof(
      fc.string(),
      fc.json(),
      fc.record({ id: fc.oneof(fc.integer(), fc.string(), fc.double(), fc.constant(null)), method, params: fc.anything() }, { requiredKeys: [] }).map((value) => {
        try {
          return JSON.stringify(value) ?? '';
        } catch {
          return '';
        }
      }),
    );
    fc.assert(
      fc.property(jsonish, (line) => {
        const parsed = parseRequest(line);
        if (parsed.ok) {
          expect(CONTROL_METHODS).toContain(parsed.request.method);
          expect(['string', 'number']).toContain(typeof parsed.request.id);
        } else {
          expect(parsed.response.ok).toBe(false);
          expect(parsed.response.error.code).toMatch(/^ERR_MUXTUN_CONTROL_(BAD_REQUEST|UNKNOWN_METHOD)$/);
          expect(typeof parsed.response.error.message).toBe('string');
        }
      }),
      { numRuns: 2000 },
    );
  });
});
