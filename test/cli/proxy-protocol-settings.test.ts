/**
 * --proxy-protocol of connect and serve as settings: the flags, their
 * config-file keys, the per-forward `-R …,proxy-protocol=` form in a file's
 * `remote` list, and a bad value named by FILE:LINE and key; and the
 * tunnel layer's validators naming the field.
 */
import { chmod, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { commandLine, type CommandLine } from '../../src/cli/config/settings.js';
import { connectCommand, resolveConnectSettings } from '../../src/cli/connect-command.js';
import type { CommandContext } from '../../src/cli/process.js';
import { resolveServeSettings, serveCommand } from '../../src/cli/serve-command.js';
import { resolveClientOptions, resolveServerOptions, type TunnelClientOptions, type TunnelServerOptions } from '../../src/tunnel/index.js';
import { tempDir } from '../support/fs.js';
import { thrown } from '../support/wait.js';

const TOKEN = 'proxy-protocol-test-token-0123';

class Sink extends Writable {
  override _write(_chunk: unknown, _encoding: BufferEncoding, callback: () => void): void {
    callback();
  }
}

async function context(): Promise<CommandContext> {
  const home = await tempDir('muxtun-pp-home-');
  return { env: { HOME: home, XDG_STATE_HOME: join(home, 'state'), XDG_CONFIG_HOME: join(home, 'config'), MUXTUN_TOKEN: TOKEN }, stdout: new Sink(), stderr: new Sink() };
}

/** The command line as the command's action would see it, without running the action. */
async function given(make: (context: CommandContext) => Command, ctx: CommandContext, argv: string[]): Promise<CommandLine> {
  const command = make(ctx).exitOverride();
  let seen: Command | undefined;
  command.action((...args: unknown[]) => {
    seen = args.at(-1) as Command;
  });
  await command.parseAsync(argv, { from: 'user' });
  return commandLine(seen!);
}

async function configFile(lines: string[]): Promise<string> {
  const path = join(await tempDir('muxtun-pp-config-'), 'muxtun.toml');
  await writeFile(path, `${lines.join('\n')}\n`);
  await chmod(path, 0o600);
  return path;
}

describe('connect', () => {
  it('--proxy-protocol and -R …,proxy-protocol= reach the client options', async () => {
    const ctx = await context();
    const resolved = await resolveConnectSettings(await given(connectCommand, ctx, ['127.0.0.1:4443', '--insecure', '--proxy-protocol', 'v2', '-R', '9000:localhost:3000', '-R', '9001:localhost:3001,proxy-protocol=off']), ctx);
    expect(resolved.client.proxyProtocol).toBe('v2');
    expect(resolved.client.remote?.map((spec) => spec.proxyProtocol)).toEqual([undefined, 'off']);
  });

  it('takes proxy-protocol and the per-forward form from the config file', async () => {
    const ctx = await context();
    const file = await configFile(['server = "127.0.0.1:4443"', 'insecure = true', 'proxy-protocol = "v1"', 'remote = ["9000:localhost:3000,proxy-protocol=v2"]']);
    const resolved = await resolveConnectSettings(await given(connectCommand, ctx, ['--config', file]), ctx);
    expect(resolved.client.proxyProtocol).toBe('v1');
    expect(resolved.client.remote).toEqual([{ bindHost: '0.0.0.0', bindPort: 9000, targetHost: 'localhost', targetPort: 3000, proxyProtocol: 'v2' }]);
  });

  it('names FILE:LINE and the key for a bad value', async () => {
    const ctx = await context();
    const file = await configFile(['server = "127.0.0.1:4443"', 'insecure = true', 'remote = ["9000:localhost:3000"]', 'proxy-protocol = "v3"']);
    const error = await resolveConnectSettings(await given(connectCommand, ctx, ['--config', file]), ctx).then(
      () => null,
      (failure: Error) => failure,
    );
    expect(error?.message).toBe(`${file}:4: proxy-protocol: "v3" is not one of "v1", "v2"`);
  });
});

describe('serve', () => {
  it('--proxy-protocol and its key reach the server options', async () => {
    const ctx = await context();
    const fromFlag = await resolveServeSettings(await given(serveCommand, ctx, ['--proxy-protocol', 'v1']), ctx, { check: true });
    expect(fromFlag.server.proxyProtocol).toBe('v1');
    const file = await configFile(['proxy-protocol = "v2"']);
    const fromFile = await resolveServeSettings(await given(serveCommand, ctx, ['--config', file]), ctx, { check: true });
    expect(fromFile.server.proxyProtocol).toBe('v2');
    const none = await resolveServeSettings(await given(serveCommand, ctx, []), ctx, { check: true });
    expect(none.server.proxyProtocol).toBeUndefined();
  });
});

describe('the tunnel layer\'s validators', () => {
  const client: TunnelClientOptions = { host: 'h', port: 1, token: 't', trust: { kind: 'insecure' } };
  const remote = { bindHost: '0.0.0.0', bindPort: 9000, targetHost: 'localhost', targetPort: 3000 };

  it.each([
    ['proxyProtocol', { proxyProtocol: 'v3' }],
    ['remote[0].proxyProtocol', { remote: [{ ...remote, proxyProtocol: 'v3' }] }],
    ['local[0].proxyProtocol', { local: [{ ...remote, proxyProtocol: 'v1' }] }],
    ['remote[0].proxyProtocol', { remote: [{ ...remote, dynamic: true, proxyProtocol: 'v1' }] }],
  ])('resolveClientOptions refuses %s', (field, extra) => {
    const error = thrown(() => resolveClientOptions({ ...client, ...(extra as Partial<TunnelClientOptions>) }));
    expect(error.code).toBe('ERR_MUXTUN_INVALID_ARGUMENT');
    expect(error.message, error.message).toMatch(new RegExp(`^${field.replace(/[[\]]/g, '\\$&')} must be `));
  });

  it('resolveServerOptions refuses another version', () => {
    const server = { host: '127.0.0.1', port: 0, tls: { cert: '', key: '' }, token: TOKEN, proxyProtocol: 'v0' } as unknown as TunnelServerOptions;
    const error = thrown(() => resolveServerOptions(server));
    expect(error.code).toBe('ERR_MUXTUN_INVALID_ARGUMENT');
    expect(error.message).toBe('proxyProtocol must be one of v1, v2, got "v0"');
  });
});
