import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { describeFailure } from '../util/errors.js';
import { connectCommand } from './connect-command.js';
import { controlCommands } from './control-commands.js';
import type { CommandContext } from './process.js';
import { serveCommand } from './serve-command.js';
import { UsageError } from './usage-error.js';
import { usersCommand } from './users-command.js';

export const ExitCode = { OK: 0, FAILURE: 1, USAGE: 2 } as const;

/** Set by the single-binary build (esbuild `define`), where no package.json sits beside the code. */
declare const __MUXTUN_VERSION__: string | undefined;

function packageVersion(): string {
  if (typeof __MUXTUN_VERSION__ === 'string') return __MUXTUN_VERSION__;
  try {
    const url = new URL('../../package.json', import.meta.url);
    return (JSON.parse(readFileSync(url, 'utf8')) as { version: string }).version;
  } catch {
    return '0.0.0';
  }
}

/** Builds the `muxtun` program. Commands throw; `main` turns that into messages and exit codes. */
export function buildProgram(context: CommandContext, version = packageVersion()): Command {
  const program = new Command('muxtun')
    .description('A small, fast TCP tunnel: -L, -R, -D and -W forwards over one TLS connection (or a WebSocket), multiplexed with muxado; connections survive a dropped link.')
    .version(version, '-V, --version', 'print the version')
    .addHelpText(
      'after',
      `
Quick start (one machine):
  muxtun serve --port 4443            # prints a token, a fingerprint and a connect line
  MUXTUN_TOKEN=... muxtun connect localhost:4443 --fingerprint sha256:... -L 8080:localhost:80

Exit codes: 0 clean stop, 1 runtime failure, 2 usage error.`,
    )
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({
      writeOut: (text) => context.stdout.write(text),
      writeErr: (text) => context.stderr.write(text),
    })
    .exitOverride();
  // Subcommands too (`forward add`): addCommand does not pass these settings down.
  const configure = (command: Command): void => {
    command.exitOverride().configureOutput({
      writeOut: (text) => context.stdout.write(text),
      writeErr: (text) => context.stderr.write(text),
    });
    command.showHelpAfterError('(run with --help for usage)');
    command.commands.forEach(configure);
  };
  for (const command of [serveCommand(context), connectCommand(context), ...controlCommands(context), usersCommand(context)]) {
    configure(command);
    program.addCommand(command);
  }
  return program;
}

/**
 * `muxtun --help | head -1`: the reader may leave before the help is all
 * written. EPIPE then only means nobody reads any more, not that muxtun
 * failed, so it must not end in an unhandled 'error' and a stack trace.
 */
function ignoreBrokenPipe(error: NodeJS.ErrnoException): void {
  if (error.code !== 'EPIPE') throw error;
}

/** Runs muxtun with `argv` (without node and script) and returns the exit code. */
export async function main(argv: string[], context: CommandContext): Promise<number> {
  for (const stream of [context.stdout, context.stderr]) {
    if (!stream.listeners('error').includes(ignoreBrokenPipe)) stream.on('error', ignoreBrokenPipe);
  }
  const program = buildProgram(context);
  if (argv.length === 0) {
    // Like ssh and git: no command is a usage error, the usage goes to stderr.
    program.outputHelp({ error: true });
    return ExitCode.USAGE;
  }
  try {
    await program.parseAsync(argv, { from: 'user' });
    return ExitCode.OK;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and version end here too, with exit code 0.
      return error.exitCode === 0 ? ExitCode.OK : ExitCode.USAGE;
    }
    if (error instanceof UsageError) {
      context.stderr.write(`muxtun: ${error.message}\n(run with --help for usage)\n`);
      return ExitCode.USAGE;
    }
    context.stderr.write(`muxtun: ${describeFailure(error)}\n`);
    return ExitCode.FAILURE;
  }
}
