/**
 * Where things are in a TOML file, by line: smol-toml parses values but
 * does not say which line a key came from, and errors must name `FILE:line`.
 * This scanner only finds table headers and the keys under them; the
 * values are smol-toml's. It understands bare and quoted keys and skips
 * the lines inside multi-line arrays and strings by the simple rule that a
 * key line starts with a key followed by `=`.
 */

/** One `[a.b]` table: its header line, the lines of its keys, and the lines it spans. All 1-based. */
export interface TomlTable {
  /** The header's dotted key, unquoted: `['users', 'alice']`. */
  path: string[];
  line: number;
  /** Comment lines directly above the header (no blank line between), which belong with it. */
  firstLine: number;
  /** The last line with a value before the next table (trailing comments and blank lines go with the next one). */
  lastLine: number;
  /** First segment of each key under it (`tokens`, `allow-local`), by where it is. */
  keys: Map<string, number>;
}

export interface TomlLayout {
  /** Keys before the first table. */
  topKeys: Map<string, number>;
  tables: TomlTable[];
  /** `[[...]]` headers, by line (arrays of tables). */
  arrayTables: Array<{ path: string[]; line: number }>;
}

const KEY = /^\s*("(?:[^"\\]|\\.)*"|'[^']*'|[A-Za-z0-9_-]+)\s*[.=]/;
const HEADER = /^\s*(\[\[?)\s*(.*?)\s*(\]\]?)\s*(?:#.*)?$/;
const isContent = (line: string): boolean => !/^\s*(#.*)?$/.test(line);

/** Splits a dotted key (`users."a.b"`) into its unquoted parts. */
export function splitDottedKey(text: string): string[] {
  const parts: string[] = [];
  const part = /\s*("(?:[^"\\]|\\.)*"|'[^']*'|[A-Za-z0-9_-]+)\s*(?:\.|$)/y;
  let match: RegExpExecArray | null;
  while (part.lastIndex < text.length && (match = part.exec(text)) !== null) {
    const raw = match[1]!;
    parts.push(raw.startsWith('"') ? (JSON.parse(raw) as string) : raw.startsWith("'") ? raw.slice(1, -1) : raw);
  }
  return parts;
}

export function scanToml(text: string): TomlLayout {
  const lines = text.split(/\r?\n/);
  const layout: TomlLayout = { topKeys: new Map(), tables: [], arrayTables: [] };
  let current: TomlTable | null = null;
  lines.forEach((line, index) => {
    const number = index + 1;
    const header = HEADER.exec(line);
    if (header && header[1]!.length === header[3]!.length) {
      const path = splitDottedKey(header[2]!);
      if (header[1] === '[[') {
        layout.arrayTables.push({ path, line: number });
        current = null;
        return;
      }
      let firstLine = number;
      while (firstLine > 1 && /^\s*#/.test(lines[firstLine - 2]!)) firstLine--;
      current = { path, line: number, firstLine, lastLine: number, keys: new Map() };
      layout.tables.push(current);
      return;
    }
    const table: TomlTable | null = current;
    if (table !== null && isContent(line)) table.lastLine = number;
    const key = KEY.exec(line);
    if (!key) return;
    const name = splitDottedKey(key[1]!)[0]!;
    const keys = table === null ? layout.topKeys : table.keys;
    if (!keys.has(name)) keys.set(name, number);
  });
  return layout;
}
