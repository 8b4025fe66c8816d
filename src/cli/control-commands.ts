/**
 * The commands that talk to a running muxtun over its control socket:
 * `status`, `forward add|remove|list` (a running connect), `session
 * list|close` (a running serve). Each sends one request and prints the
 * answer; a refusal (a -R the server would not grant, an unknown session)
 * is the command's error and exit code 1.
 */
import { homedir } from 'node:os';
import { Command } from 'commander';
import { MAX_REASON_LENGTH, defaultControlDir, findControlSocket, requestControl, type ControlMethod, type ControlParams, type ControlResults, type ForwardKind, type MuxtunKind } from '../control/index.js';
import { formatForwards, formatSessions, formatStatus, forwardName } from './control-format.js';
import { parseDynamicSpec, parseForwardSpec } from './forward-spec.js';
import type { CommandContext } from './process.js';
import { UsageError } from './usage-error.js';

interface TargetFlags {
  control?: string;
}

interface JsonFlags extends TargetFlags {
  json?: boolean;
}

const CONTROL_HELP = 'the control socket of the muxtun to talk to (default: the only one running for this user; see docs/control.md)';

function addTarget(command: Command): Command {
  return command.option('--control <path>', CONTROL_HELP);
}

function addJson(command: Command): Command {
  return command.option('--json', 'print the result as JSON, for scripts');
}

/** The socket to use: --control, or the one live muxtun (of `kind`) in the default directory. */
async function socketPath(context: CommandContext, flags: TargetFlags, kind: MuxtunKind | undefined): Promise<string> {
  if (flags.control !== undefined) return flags.control;
  const endpoint = await findControlSocket({ dir: defaultControlDir(context.env, homedir()), ...(kind ? { kind } : {}) });
  return endpoint.path;
}

/** One request to the chosen muxtun. */
async function call<M extends ControlMethod>(context: CommandContext, flags: TargetFlags, kind: MuxtunKind | undefined, method: M, params: ControlParams[M]): Promise<ControlResults[M]> {
  return requestControl(await socketPath(context, flags, kind), method, params);
}

function print(context: CommandContext, text: string): void {
  context.stdout.write(`${text}\n`);
}

function printJson(context: CommandContext, value: unknown): void {
  print(context, JSON.stringify(value, null, 2));
}

function statusCommand(context: CommandContext): Command {
  return addJson(addTarget(new Command('status')))
    .description('show what a running connect or serve is doing: its session, forwards, connections and bytes (serve: its sessions by user)')
    .action(async (flags: JsonFlags) => {
      const status = await call(context, flags, undefined, 'status', undefined);
      if (flags.json) printJson(context, status);
      else print(context, formatStatus(status));
    });
}

interface ForwardFlags extends JsonFlags {
  local?: string;
  remote?: string;
  dynamic?: string;
}

/** The one -L, -R or -D given, checked like connect checks it (a bad spec is a usage error, before anything is sent). */
function oneForward(flags: ForwardFlags, what: string): { kind: ForwardKind; spec: string } {
  const given: Array<{ kind: ForwardKind; spec: string }> = [];
  if (flags.local !== undefined) given.push({ kind: 'L', spec: flags.local });
  if (flags.remote !== undefined) given.push({ kind: 'R', spec: flags.remote });
  if (flags.dynamic !== undefined) given.push({ kind: 'D', spec: flags.dynamic });
  if (given.length !== 1) throw new UsageError(`${what} takes exactly one of -L, -R or -D`);
  const forward = given[0]!;
  if (forward.kind === 'D') parseDynamicSpec(forward.spec);
  else parseForwardSpec(`-${forward.kind}`, forward.spec);
  return forward;
}

function addForwardFlags(command: Command, verb: string): Command {
  return command
    .option('-L, --local <[bind:]port:host:hostport>', `${verb} a local forward, as connect -L`)
    .option('-R, --remote <[bind:]port[:host:hostport]>', `${verb} a remote forward, as connect -R (the server must grant it)`)
    .option('-D, --dynamic <[bind:]port>', `${verb} a SOCKS forward, as connect -D`);
}

function forwardCommand(context: CommandContext): Command {
  const forward = new Command('forward').description('change the forwards of a running connect without touching the others (like ssh -O forward)');
  forward.addCommand(
    addJson(addTarget(addForwardFlags(new Command('add'), 'add')))
      .description('add a forward; a refused one (-R outside the server policy, port in use) is the error, exit code 1')
      .action(async (flags: ForwardFlags) => {
        const { kind, spec } = oneForward(flags, 'forward add');
        const { forward: added } = await call(context, flags, 'connect', 'forward.add', { kind, spec });
        if (flags.json) printJson(context, added);
        else print(context, `added forward ${added.id}: ${forwardName(added)}${added.listening ? `, listening on ${added.listening}` : ''}`);
      }),
  );
  forward.addCommand(
    addTarget(addForwardFlags(new Command('remove'), 'remove'))
      .argument('[id|spec]', 'the forward\'s id (from forward list) or its spec')
      .description('remove a forward: its listener closes, its open connections may finish')
      .action(async (name: string | undefined, flags: ForwardFlags) => {
        const hasFlag = flags.local !== undefined || flags.remote !== undefined || flags.dynamic !== undefined;
        if (name !== undefined && hasFlag) throw new UsageError('forward remove takes an id or spec, or one of -L, -R, -D, not both');
        let target: string;
        if (name !== undefined) target = name;
        else if (hasFlag) {
          const { kind, spec } = oneForward(flags, 'forward remove');
          target = `-${kind} ${spec}`;
        } else throw new UsageError('forward remove needs the forward: an id from `muxtun forward list`, or its spec');
        const { forward: removed } = await call(context, flags, 'connect', 'forward.remove', { forward: target });
        print(context, `removed forward ${removed.id}: ${forwardName(removed)}`);
      }),
  );
  forward.addCommand(
    addJson(addTarget(new Command('list')))
      .description('list the forwards of a running connect with their ids, listening addresses, connections and bytes')
      .action(async (flags: JsonFlags) => {
        const result = await call(context, flags, 'connect', 'forward.list', undefined);
        if (flags.json) printJson(context, result);
        else print(context, formatForwards(result.forwards));
      }),
  );
  return forward;
}

function sessionCommand(context: CommandContext): Command {
  const session = new Command('session').description('see and end the client sessions of a running serve');
  session.addCommand(
    addJson(addTarget(new Command('list')))
      .description('list the sessions by user, with their ids (for session close), addresses and forwards')
      .action(async (flags: JsonFlags) => {
        const result = await call(context, flags, 'serve', 'session.list', undefined);
        if (flags.json) printJson(context, result);
        else print(context, formatSessions(result.sessions));
      }),
  );
  session.addCommand(
    addTarget(new Command('close'))
      .argument('<id>', 'the session id (from session list)')
      .option('--reason <text>', 'why, shown to the client and logged')
      .description("end a client's session; the client sees the reason")
      .action(async (id: string, flags: TargetFlags & { reason?: string }) => {
        // eslint-disable-next-line no-control-regex
        if (flags.reason !== undefined && (flags.reason.length > MAX_REASON_LENGTH || /[\u0000-\u001f\u007f]/.test(flags.reason))) {
          throw new UsageError(`--reason: at most ${MAX_REASON_LENGTH} characters on one line`);
        }
        const { session: closed } = await call(context, flags, 'serve', 'session.close', { session: id, ...(flags.reason !== undefined ? { reason: flags.reason } : {}) });
        print(context, `closed session ${closed.id} (${closed.user ?? 'no user'}, from ${closed.remoteAddress})`);
      }),
  );
  return session;
}

/** `status`, `forward` and `session`, for main.ts to register. */
export function controlCommands(context: CommandContext): Command[] {
  return [statusCommand(context), forwardCommand(context), sessionCommand(context)];
}
