/**
 * Where each key of a TOML document is written, so a config error can say
 * `FILE:LINE`: smol-toml gives positions for syntax errors only.
 *
 * This is not a TOML parser. It runs after smol-toml accepted the text and
 * only needs to tell keys from values: it skips strings (all four kinds,
 * multi-line ones included), arrays and inline tables (which may span
 * lines and hold comments) and comments, and notes the line each key starts
 * on. Keys are dotted paths relative to the document: `max-sessions`,
 * `users.alice` (a `[users.alice]` header), `users.alice.tokens`. Array-of-
 * tables entries are numbered: `[[forward]]` is `forward[0]`, then
 * `forward[1]`. A key written twice keeps its first line (TOML forbids the
 * second anyway); a table's line is where it is first named, by a header or
 * a dotted key. Should the scanner meet something it does not expect, it
 * returns what it found so far: a missing line makes a message less precise,
 * never wrong.
 */
export function tomlKeyLines(text: string): Map<string, number> {
  const scanner = new Scanner(text);
  try {
    scanner.document();
  } catch {
    // Only on text smol-toml would have rejected; keep the keys found so far.
  }
  return scanner.lines;
}

const BARE_KEY = /[A-Za-z0-9_-]/;

class Scanner {
  readonly lines = new Map<string, number>();
  #text: string;
  #at = 0;
  #line = 1;
  #table: string[] = [];
  #arrayTables = new Map<string, number>();

  constructor(text: string) {
    this.#text = text;
  }

  document(): void {
    while (this.#at < this.#text.length) {
      this.#skipBlank();
      const char = this.#peek();
      if (char === undefined) return;
      if (char === '\n') this.#newline();
      else if (char === '\r') this.#at++;
      else if (char === '#') this.#skipComment();
      else if (char === '[') this.#header();
      else this.#keyValue(this.#table);
    }
  }

  #header(): void {
    const line = this.#line;
    const isArray = this.#text.startsWith('[[', this.#at);
    this.#at += isArray ? 2 : 1;
    const path = this.#key();
    this.#skipBlank();
    this.#expect(isArray ? ']]' : ']');
    if (isArray) {
      const name = path.join('.');
      const index = this.#arrayTables.get(name) ?? 0;
      this.#arrayTables.set(name, index + 1);
      this.#note(path, line);
      path[path.length - 1] = `${path[path.length - 1]}[${index}]`;
    }
    this.#note(path, line);
    this.#table = path;
    this.#skipRestOfLine();
  }

  /** `key = value` at the top of a table (the rest of its line is skipped) or inside an inline table. */
  #keyValue(table: readonly string[], inline = false): void {
    const line = this.#line;
    const path = this.#key();
    this.#skipBlank();
    this.#expect('=');
    this.#skipBlank();
    this.#value();
    if (inline) return;
    this.#note([...table, ...path], line);
    this.#skipRestOfLine();
  }

  /** A dotted key: bare, "basic" or 'literal' parts, with blanks allowed around the dots. */
  #key(): string[] {
    const parts: string[] = [];
    for (;;) {
      this.#skipBlank();
      const char = this.#peek();
      if (char === '"') parts.push(this.#basicKey());
      else if (char === "'") parts.push(this.#literalString());
      else {
        const start = this.#at;
        while (BARE_KEY.test(this.#peek() ?? '')) this.#at++;
        if (this.#at === start) throw new Error('expected a key');
        parts.push(this.#text.slice(start, this.#at));
      }
      this.#skipBlank();
      if (this.#peek() !== '.') return parts;
      this.#at++;
    }
  }

  #value(): void {
    const char = this.#peek();
    if (char === '"' || char === "'") {
      this.#string();
    } else if (char === '[') {
      this.#at++;
      for (;;) {
        this.#skipSpaceAndComments();
        const next = this.#peek();
        if (next === undefined) throw new Error('unterminated array');
        if (next === ']') {
          this.#at++;
          return;
        }
        if (next === ',') this.#at++;
        else this.#value();
      }
    } else if (char === '{') {
      this.#at++;
      for (;;) {
        this.#skipSpaceAndComments();
        const next = this.#peek();
        if (next === undefined) throw new Error('unterminated inline table');
        if (next === '}') {
          this.#at++;
          return;
        }
        if (next === ',') this.#at++;
        // Keys inside an inline table are not noted: the line of the table's own key is the one to show.
        else this.#keyValue(this.#table, true);
      }
    } else {
      // Numbers, booleans, dates: up to the next delimiter (a date's " 07:32" part is skipped with the rest of the line).
      const start = this.#at;
      while (this.#at < this.#text.length && !/[\s,\]}#]/.test(this.#text[this.#at]!)) this.#at++;
      if (this.#at === start) throw new Error('expected a value');
    }
  }

  #string(): void {
    const quote = this.#peek()!;
    const triple = quote.repeat(3);
    if (!this.#text.startsWith(triple, this.#at)) {
      if (quote === '"') this.#basicKey();
      else this.#literalString();
      return;
    }
    this.#at += 3;
    for (;;) {
      const char = this.#peek();
      if (char === undefined) throw new Error('unterminated string');
      if (char === '\\' && quote === '"') {
        this.#at++;
        if (this.#peek() === '\n') this.#newline();
        else this.#at++;
      } else if (this.#text.startsWith(triple, this.#at)) {
        this.#at += 3;
        // Up to two more quotes belong to the content: """a"""" is `a"`.
        for (let extra = 0; extra < 2 && this.#peek() === quote; extra++) this.#at++;
        return;
      } else if (char === '\n') {
        this.#newline();
      } else {
        this.#at++;
      }
    }
  }

  /** A one-line "basic" string (a key or a value); returns its text with the common escapes undone. */
  #basicKey(): string {
    const start = this.#at;
    this.#at++;
    for (;;) {
      const char = this.#peek();
      if (char === undefined || char === '\n') throw new Error('unterminated string');
      this.#at++;
      if (char === '\\') this.#at++;
      else if (char === '"') break;
    }
    const raw = this.#text.slice(start, this.#at);
    try {
      return JSON.parse(raw) as string;
    } catch {
      return raw.slice(1, -1);
    }
  }

  #literalString(): string {
    const end = this.#text.indexOf("'", this.#at + 1);
    const newline = this.#text.indexOf('\n', this.#at + 1);
    if (end < 0 || (newline >= 0 && newline < end)) throw new Error('unterminated string');
    const content = this.#text.slice(this.#at + 1, end);
    this.#at = end + 1;
    return content;
  }

  /** Notes the key and each of its parents (`[users.alice]` and `a.b = 1` define `users` and `a` where they are first written). */
  #note(path: readonly string[], line: number): void {
    for (let length = 1; length <= path.length; length++) {
      const key = path.slice(0, length).join('.');
      if (!this.lines.has(key)) this.lines.set(key, line);
    }
  }

  #peek(): string | undefined {
    return this.#text[this.#at];
  }

  #expect(token: string): void {
    if (!this.#text.startsWith(token, this.#at)) throw new Error(`expected ${token}`);
    this.#at += token.length;
  }

  #newline(): void {
    this.#at++;
    this.#line++;
  }

  #skipBlank(): void {
    while (this.#peek() === ' ' || this.#peek() === '\t') this.#at++;
  }

  #skipComment(): void {
    while (this.#at < this.#text.length && this.#peek() !== '\n') this.#at++;
  }

  #skipSpaceAndComments(): void {
    for (;;) {
      const char = this.#peek();
      if (char === ' ' || char === '\t' || char === '\r') this.#at++;
      else if (char === '\n') this.#newline();
      else if (char === '#') this.#skipComment();
      else return;
    }
  }

  /** After a value or header only a comment may follow on its line. */
  #skipRestOfLine(): void {
    this.#skipComment();
  }
}
