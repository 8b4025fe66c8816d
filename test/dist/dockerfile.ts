// Just enough of a Dockerfile reader to check examples/docker/Dockerfile
// without a Docker engine: instructions per stage, and a .dockerignore
// matcher for the simple patterns that file uses.

export interface Instruction {
  keyword: string;
  /** The rest of the line, continuation lines joined. */
  text: string;
  line: number;
}

export interface Stage {
  from: string;
  name: string | undefined;
  instructions: Instruction[];
}

/** Splits a Dockerfile into stages of instructions (comments dropped, `\` continuations joined). */
export function parseDockerfile(source: string): Stage[] {
  const stages: Stage[] = [];
  const lines = source.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const start = i;
    let text = lines[i]!.trim();
    if (text === '' || text.startsWith('#')) continue;
    while (text.endsWith('\\') && i + 1 < lines.length) {
      i++;
      const next = lines[i]!.trim();
      text = `${text.slice(0, -1).trimEnd()} ${next.startsWith('#') ? '' : next}`.trimEnd();
    }
    const match = /^(\w+)\s+(.*)$/.exec(text);
    if (!match) throw new Error(`Dockerfile line ${start + 1}: cannot read "${text}"`);
    const keyword = match[1]!.toUpperCase();
    const instruction = { keyword, text: match[2]!, line: start + 1 };
    if (keyword === 'FROM') {
      const from = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(instruction.text);
      if (!from) throw new Error(`Dockerfile line ${start + 1}: cannot read FROM "${instruction.text}"`);
      stages.push({ from: from[1]!, name: from[2], instructions: [] });
    } else {
      const stage = stages.at(-1);
      if (!stage) throw new Error(`Dockerfile line ${start + 1}: ${keyword} before any FROM`);
      stage.instructions.push(instruction);
    }
  }
  return stages;
}

/** The JSON (exec) form of ENTRYPOINT, CMD or VOLUME; throws on the shell form. */
export function execForm(instruction: Instruction): string[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(instruction.text);
  } catch {
    throw new Error(`Dockerfile line ${instruction.line}: ${instruction.keyword} is not in JSON exec form: ${instruction.text}`);
  }
  if (!Array.isArray(parsed) || !parsed.every((part) => typeof part === 'string')) {
    throw new Error(`Dockerfile line ${instruction.line}: ${instruction.keyword} must be a JSON array of strings`);
  }
  return parsed;
}

/** COPY's flags, sources and destination (no quoting or JSON form: the example uses neither). */
export function parseCopy(instruction: Instruction): { from: string | undefined; sources: string[]; dest: string } {
  const words = instruction.text.split(/\s+/);
  let from: string | undefined;
  while (words[0]?.startsWith('--')) {
    const flag = words.shift()!;
    if (flag.startsWith('--from=')) from = flag.slice('--from='.length);
    else throw new Error(`Dockerfile line ${instruction.line}: COPY flag ${flag} is not understood by this check`);
  }
  if (words.length < 2) throw new Error(`Dockerfile line ${instruction.line}: COPY needs a source and a destination`);
  return { from, sources: words.slice(0, -1), dest: words.at(-1)! };
}

/**
 * A .dockerignore of the form the example uses: `**` (ignore everything), then
 * `!path` or `!dir/**` lines that let things back in. Other patterns are
 * refused rather than guessed at.
 */
export function dockerignoreAllows(source: string): (path: string) => boolean {
  const lines = source.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
  if (lines[0] !== '**') throw new Error('.dockerignore: this check understands only "**" followed by "!" exceptions');
  const exceptions = lines.slice(1).map((line) => {
    if (!line.startsWith('!') || /[*?[]/.test(line.replace(/\/\*\*$/, ''))) throw new Error(`.dockerignore: pattern "${line}" is not understood by this check`);
    return line.slice(1);
  });
  return (path) =>
    exceptions.some((pattern) => (pattern.endsWith('/**') ? path.startsWith(pattern.slice(0, -2)) : path === pattern));
}
