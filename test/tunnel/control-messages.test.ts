/**
 * validateMessage: what the control stream accepts from a peer. Every
 * message type, each field wrong in each way, and properties over random
 * input (valid messages pass unchanged; nothing ever throws).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { validateMessage, type ControlMessage } from '../../src/tunnel/control-messages.js';

const NOT_OBJECT = 'a control message must be a JSON object';
const U32_MAX = 0xffffffff;

/** A well-formed message of each type, and the reason each type gives for a bad field. */
const valid: Record<ControlMessage['type'], { message: ControlMessage; reason: (field: string) => string }> = {
  hello: { message: { type: 'hello', version: 1, token: 'secret', clientId: 'c-1' }, reason: (field) => `hello.${field} must be ${field === 'version' ? 'a number' : 'a string'}` },
  welcome: { message: { type: 'welcome', version: 1, sessionId: 's-1' }, reason: () => 'malformed welcome' },
  listen: { message: { type: 'listen', id: 0, bindHost: '0.0.0.0', port: 9000 }, reason: () => 'malformed listen request' },
  unlisten: { message: { type: 'unlisten', id: 4 }, reason: () => 'malformed unlisten request' },
  listening: { message: { type: 'listening', id: 3, bindHost: '::', port: 0 }, reason: () => 'malformed listening reply' },
  error: { message: { type: 'error', id: 1, code: 'ERR_MUXTUN_POLICY', message: 'no' }, reason: () => 'malformed error message' },
  'forward-failed': { message: { type: 'forward-failed', streamId: 7, code: 'ERR_MUXTUN_DIAL', message: 'refused' }, reason: () => 'malformed forward-failed message' },
  'forward-closed': { message: { type: 'forward-closed', id: 2, code: 'ERR_MUXTUN_POLICY', message: 'no longer allowed' }, reason: () => 'malformed forward-closed message' },
  resumed: { message: { type: 'resumed', sessionId: 's-1' }, reason: () => 'malformed resumed message' },
  'resume-state': { message: { type: 'resume-state', highestSeen: 4, conns: [[3, 10, false]], last: true }, reason: () => 'malformed resume-state message' },
  ack: { message: { type: 'ack', acks: [[3, 1024, true]] }, reason: () => 'malformed ack message' },
};

/** Numeric fields (unsigned 32-bit, or a port) and string fields with their maximum lengths. */
const fields: Record<ControlMessage['type'], { numbers: Record<string, number>; strings: Record<string, number> }> = {
  hello: { numbers: { version: U32_MAX }, strings: { token: 4096, clientId: 128 } },
  welcome: { numbers: { version: U32_MAX }, strings: { sessionId: 128 } },
  listen: { numbers: { id: U32_MAX, port: 65535 }, strings: { bindHost: 255 } },
  unlisten: { numbers: { id: U32_MAX }, strings: {} },
  listening: { numbers: { id: U32_MAX, port: 65535 }, strings: { bindHost: 255 } },
  error: { numbers: { id: U32_MAX }, strings: { code: 64, message: 4096 } },
  'forward-failed': { numbers: { streamId: U32_MAX }, strings: { code: 64, message: 4096 } },
  'forward-closed': { numbers: { id: U32_MAX }, strings: { code: 64, message: 4096 } },
  resumed: { numbers: {}, strings: { sessionId: 128 } },
  'resume-state': { numbers: { highestSeen: 0x7fffffff }, strings: {} },
  ack: { numbers: {}, strings: {} },
};

const types = Object.keys(valid) as Array<ControlMessage['type']>;
const with_ = (message: ControlMessage, field: string, value: unknown): Record<string, unknown> => ({ ...message, [field]: value });
const without = (message: ControlMessage, field: string): Record<string, unknown> => {
  const copy: Record<string, unknown> = { ...message };
  delete copy[field];
  return copy;
};

describe('validateMessage: well-formed messages', () => {
  it.each(types)('accepts a %s message and returns it unchanged', (type) => {
    const { message } = valid[type];
    expect(validateMessage(message)).toEqual(message);
  });

  it.each(types)('a %s message may carry numbers at both ends of their ranges and strings at their longest', (type) => {
    const { numbers, strings } = fields[type];
    for (const [field, max] of Object.entries(numbers)) {
      for (const value of [0, max]) {
        const message = with_(valid[type].message, field, value);
        expect(validateMessage(message), `${field} = ${value}`).toEqual(message);
      }
    }
    for (const [field, max] of Object.entries(strings)) {
      for (const value of ['', 'x'.repeat(max)]) {
        const message = with_(valid[type].message, field, value);
        expect(validateMessage(message), `${field} of ${value.length}`).toEqual(message);
      }
    }
  });

  it('an error message without id (session-wide) is valid', () => {
    const message = { type: 'error', code: 'ERR_MUXTUN_AUTH', message: 'bad token' };
    expect(validateMessage(message)).toEqual(message);
  });

  it('keeps fields it does not know (a newer peer may send more)', () => {
    const message = { ...valid.welcome.message, extra: { nested: true } };
    expect(validateMessage(message)).toEqual(message);
  });
});

describe('validateMessage: malformed fields', () => {
  // ack and resume-state carry lists, checked in 'resumption' below.
  for (const type of types.filter((t) => Object.keys(fields[t].numbers).length + Object.keys(fields[t].strings).length > 0)) {
    const { message, reason } = valid[type];
    const { numbers, strings } = fields[type];
    describe(type, () => {
      it.each(Object.entries(numbers))('refuses %s when it is missing, not a number, negative, fractional or too large', (field, max) => {
        const bad: unknown[] = [undefined, '1', null, true, [1], {}, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, max + 1];
        for (const value of bad) {
          // A missing optional error.id is fine; every other absence is not.
          if (type === 'error' && field === 'id' && value === undefined) continue;
          const candidate = value === undefined ? without(message, field) : with_(message, field, value);
          expect(validateMessage(candidate), `${field} = ${String(value)}`).toBe(reason(field));
        }
      });

      it.each(Object.entries(strings))('refuses %s when it is missing, not a string or too long', (field, max) => {
        for (const value of [undefined, 1, null, true, ['x'], { text: 'x' }, 'x'.repeat(max + 1)]) {
          const candidate = value === undefined ? without(message, field) : with_(message, field, value);
          expect(validateMessage(candidate), `${field} = ${JSON.stringify(value)?.slice(0, 20)}`).toBe(reason(field));
        }
      });
    });
  }

  it('hello names the first bad field', () => {
    expect(validateMessage({ type: 'hello', version: -1, token: 1, clientId: 1 })).toBe('hello.version must be a number');
    expect(validateMessage({ type: 'hello', version: 1, token: 1, clientId: 1 })).toBe('hello.token must be a string');
    expect(validateMessage({ type: 'hello', version: 1, token: 't', clientId: 1 })).toBe('hello.clientId must be a string');
  });

  it('a listen request for a port above 65535 is malformed', () => {
    expect(validateMessage({ type: 'listen', id: 1, bindHost: '0.0.0.0', port: 65536 })).toBe('malformed listen request');
  });
});

describe('validateMessage: not a control message', () => {
  it.each([null, [], [{ type: 'hello' }], 'hello', 42, true, false])('refuses %j: not an object', (value) => {
    expect(validateMessage(value)).toBe(NOT_OBJECT);
  });

  it.each([
    [{}, "a control message's type must be a string"],
    [{ type: 'goodbye' }, 'unknown control message type "goodbye"'],
    [{ type: 'Hello', version: 1, token: 't', clientId: 'c' }, 'unknown control message type "Hello"'],
    [{ type: 7 }, "a control message's type must be a string"],
    [{ type: null }, "a control message's type must be a string"],
    [{ type: ['hello'] }, "a control message's type must be a string"],
    [{ type: { a: 1 } }, "a control message's type must be a string"],
  ])('refuses %j: unknown type', (value, reason) => {
    expect(validateMessage(value)).toBe(reason);
  });

  it('quotes at most a short prefix of an unknown type', () => {
    const reason = validateMessage({ type: 'x'.repeat(10_000) });
    expect(typeof reason).toBe('string');
    expect(reason as string).toMatch(/^unknown control message type "x+$/);
    expect((reason as string).length).toBeLessThan(80);
  });

  // Regression: String(type) threw for an object whose own toString/valueOf
  // are not functions, which JSON.parse gladly produces; on the server that
  // escaped the control stream's 'data' handler before authentication.
  it('never throws, even for a type object with a non-function toString', () => {
    const hostile = JSON.parse('{"type":{"toString":1,"valueOf":1}}') as unknown;
    expect(typeof validateMessage(hostile)).toBe('string');
  });
});

// Time-boxed so the file stays fast on a slow shared machine.
const budget = { numRuns: 300, interruptAfterTimeLimit: 2000 };

const u32 = fc.nat({ max: U32_MAX });
const port = fc.nat({ max: 65535 });
const str = (maxLength: number): fc.Arbitrary<string> =>
  fc.oneof(fc.string({ maxLength: Math.min(maxLength, 40) }), fc.string({ unit: 'grapheme', maxLength: Math.min(maxLength, 20) }), fc.constant('x'.repeat(maxLength)));

const messageArb: fc.Arbitrary<ControlMessage> = fc.oneof(
  fc.record({ type: fc.constant('hello' as const), version: u32, token: str(4096), clientId: str(128) }),
  fc.record({ type: fc.constant('welcome' as const), version: u32, sessionId: str(128) }),
  fc.record({ type: fc.constant('listen' as const), id: u32, bindHost: str(255), port }),
  fc.record({ type: fc.constant('listening' as const), id: u32, bindHost: str(255), port }),
  fc.record({ type: fc.constant('error' as const), id: u32, code: str(64), message: str(4096) }, { requiredKeys: ['type', 'code', 'message'] }),
  fc.record({ type: fc.constant('forward-failed' as const), streamId: u32, code: str(64), message: str(4096) }),
);

describe('validateMessage: properties', () => {
  it('a valid message sent as JSON comes out of validateMessage unchanged', () => {
    fc.assert(
      fc.property(messageArb, (message) => {
        const received: unknown = JSON.parse(JSON.stringify(message));
        expect(validateMessage(received)).toEqual(message);
      }),
      budget,
    );
  });

  /** A message or a reason, never an exception; messages are objects of a known type. */
  const answersSanely = (value: unknown): void => {
    const result = validateMessage(value);
    if (typeof result === 'string') {
      expect(result.length).toBeGreaterThan(0);
    } else {
      expect(types).toContain(result.type);
      expect(result).toBe(value);
    }
  };

  it('any JSON value gets a message or a reason, never an exception', () => {
    fc.assert(
      fc.property(fc.json(), (text) => answersSanely(JSON.parse(text))),
      budget,
    );
  });

  it('objects of a known type with random field values get a message or a reason, never an exception', () => {
    const anyField = fc.oneof(fc.jsonValue(), u32, fc.integer(), fc.double(), fc.string());
    const fieldName = fc.constantFrom('version', 'token', 'clientId', 'sessionId', 'id', 'bindHost', 'port', 'code', 'message', 'streamId');
    const arb = fc
      .tuple(fc.constantFrom(...types), fc.dictionary(fieldName, anyField))
      .map(([type, rest]) => JSON.parse(JSON.stringify({ ...rest, type })) as unknown);
    fc.assert(fc.property(arb, answersSanely), budget);
  });

  it('a valid message with one field replaced by a random JSON value is accepted only if the value is in range', () => {
    const arb = fc.tuple(messageArb, fc.jsonValue()).chain(([message, value]) =>
      fc.constantFrom(...Object.keys(message).filter((k) => k !== 'type')).map((field) => ({ message, field, value })),
    );
    fc.assert(
      fc.property(arb, ({ message, field, value }) => {
        const candidate = JSON.parse(JSON.stringify({ ...message, [field]: value })) as Record<string, unknown>;
        const result = validateMessage(candidate);
        const spec = fields[message.type];
        const max = spec.numbers[field] ?? spec.strings[field]!;
        const fine =
          field in spec.numbers
            ? typeof candidate[field] === 'number' && Number.isInteger(candidate[field]) && (candidate[field] as number) >= 0 && (candidate[field] as number) <= max
            : candidate[field] === undefined
              ? false
              : typeof candidate[field] === 'string' && (candidate[field] as string).length <= max;
        // error.id may be left out.
        const optional = message.type === 'error' && field === 'id' && !(field in candidate);
        if (fine || optional) expect(result).toEqual(candidate);
        else expect(typeof result).toBe('string');
      }),
      budget,
    );
  });
});

describe('validateMessage: resumption', () => {
  it('takes a hello that offers or asks for a resume, and refuses a malformed resumeSession', () => {
    const hello = { type: 'hello', version: 1, token: 't', clientId: 'c' };
    expect(validateMessage({ ...hello, resume: true })).toEqual({ ...hello, resume: true });
    const resuming = { ...hello, resume: true, resumeSession: { sessionId: 's', secret: 'x'.repeat(43) } };
    expect(validateMessage(resuming)).toEqual(resuming);
    expect(validateMessage({ ...hello, resume: 'yes' })).toBe('hello.resume must be true or false');
    for (const bad of [null, 'id', { sessionId: 's' }, { secret: 's' }, { sessionId: 1, secret: 's' }, { sessionId: 's', secret: 'x'.repeat(200) }]) {
      expect(validateMessage({ ...hello, resumeSession: bad }), JSON.stringify(bad)).toBe('hello.resumeSession must have a sessionId and a secret');
    }
  });

  it('takes a welcome with resume terms, and refuses malformed ones', () => {
    const welcome = { type: 'welcome', version: 1, sessionId: 's', resume: { secret: 'abc', graceMs: 60000 } };
    expect(validateMessage(welcome)).toEqual(welcome);
    for (const bad of [{ secret: 'abc' }, { graceMs: 1 }, { secret: 1, graceMs: 1 }, { secret: 'abc', graceMs: -1 }, 'abc']) {
      expect(validateMessage({ ...welcome, resume: bad }), JSON.stringify(bad)).toBe('malformed welcome.resume');
    }
  });

  it('refuses conn states that are not [id, bytes, fin] triples of the right kinds, or too many', () => {
    const good: Array<[number, number, boolean]> = [[1, 0, false], [2, Number.MAX_SAFE_INTEGER, true]];
    expect(validateMessage({ type: 'ack', acks: good })).toEqual({ type: 'ack', acks: good });
    const bad = [
      'x',
      [[1, 0]],
      [[1, 0, false, 4]],
      [[0.5, 0, false]],
      [[-1, 0, false]],
      [[2 ** 31, 0, false]],
      [[1, -1, false]],
      [[1, 1.5, false]],
      [[1, 0, 'no']],
      [{ id: 1, bytes: 0, fin: false }],
      Array.from({ length: 1001 }, () => [1, 0, false]),
    ];
    for (const acks of bad) expect(validateMessage({ type: 'ack', acks }), JSON.stringify(acks).slice(0, 60)).toBe('malformed ack message');
    expect(validateMessage({ type: 'resume-state', highestSeen: 3, conns: [[1, 0]], last: true })).toBe('malformed resume-state message');
    expect(validateMessage({ type: 'resume-state', highestSeen: 3, conns: [], last: 'yes' })).toBe('malformed resume-state message');
  });
});
