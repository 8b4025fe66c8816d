/**
 * Where things are in a TOML document, by line: smol-toml parses values but
 * gives positions for syntax errors only, and muxtun's errors name
 * `FILE:LINE` (the config file, the users file), while `muxtun users` edits
 * the users file one table at a time and must know the lines each spans.
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
 * returns what it found so far with `complete` false: a missing line makes
 * an error message less precise, never wrong, but an edit must not trust it.
 */

/** One `[a.b]` table. All lines 1-based. */
export interface TomlTable {
  /** The header's dotted key, unquoted: `['users', 'alice']`. */
  path: string[];
  /** The header's line. */
  line: number;
  /** Comment lines directly above the header (no blank line between), which belong with it. */
  firstLine: number;
  /** The last line of its last value (a multi-line array's `]`); trailing comments and blank lines go with what follows. */
  lastLine: number;
}

export interface TomlLayout {
  /** Every key's line, by dotted path (see the file header). */
  keyLines: Map<string, number>;
  /** The `[a.b]` tables, in order. */
  tables: TomlTable[];
  /** The `[[a.b]]` headers, in order. */
  arrayTables: Array<{ path: string[]; line: number }>;
  /** The scanner followed the whole text (false only for text smol-toml would reject, or a case it does not know). */
  complete: boolean;
}

export function tomlLayout(text: string): TomlLayout {
  const scanner = new Scanner(text);
  let complete = true;
  try {
    scanner.document();
  } catch {
    // Only on text smol-toml would have rejected; keep the keys found so far.
    complete = false;
  }
  const textLines = text.split('\n');
  for (const table of scanner.tables) {
    while (table.firstLine > 1 && /^\s*#/.test(textLines[table.firstLine - 2]!)) table.firstLine--;
  }
  return { keyLines: scanner.lines, tables: scanner.tables, arrayTables: scanner.arrayTables, complete };
}

const BARE_KEY = /[A-Za-z0-9_-]/;

class Scanner {
  readonly lines = new Map<string, number>();
  readonly tables: TomlTable[] = [];
  readonly arrayTables: Array<{ path: string[]; line: number }> = [];
  /** The `[a.b]` table whose keys come now, if any. */
  #current: TomlTable | null = null;
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
    if (isArray) this.arrayTables.push({ path: [...path], line });
    this.#current = isArray ? null : { path: [...path], line, firstLine: line, lastLine: line };
    if (this.#current) this.tables.push(this.#current);
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
    if (this.#current) this.#current.lastLine = this.#line;
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
      this.#items(']', 'array', () => this.#value());
    } else if (char === '{') {
      // Keys inside an inline table are not noted: the line of the table's own key is the one to show.
      this.#items('}', 'inline table', () => this.#keyValue(this.#table, true));
    } else {
      // Numbers, booleans, dates: up to the next delimiter.
      const start = this.#at;
      this.#skipToken();
      if (this.#at === start) throw new Error('expected a value');
      // A date and time may be written with a space between them (1979-05-27 07:32:00Z), also inside arrays and inline tables.
      if (/^\d{4}-\d{2}-\d{2}$/.test(this.#text.slice(start, this.#at)) && /^ \d{2}:/.test(this.#text.slice(this.#at, this.#at + 4))) {
        this.#at++;
        this.#skipToken();
      }
    }
  }

  /** An array's or inline table's items, from its opening bracket to `close`: comma-separated, across lines and comments. */
  #items(close: string, what: string, item: () => void): void {
    this.#at++;
    for (;;) {
      this.#skipSpaceAndComments();
      const next = this.#peek();
      if (next === undefined) throw new Error(`unterminated ${what}`);
      if (next === close) {
        this.#at++;
        return;
      }
      if (next === ',') this.#at++;
      else item();
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

  #skipToken(): void {
    while (this.#at < this.#text.length && !/[\s,\]}#]/.test(this.#text[this.#at]!)) this.#at++;
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
