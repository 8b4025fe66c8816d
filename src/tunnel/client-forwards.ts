/**
 * The client's forwards by id, across sessions and config reloads: -L and
 * -D listeners here, -R forwards the server listens for. Ids come from one
 * counter and are never reused in the client's life, so a late stream or
 * server answer that names a removed forward cannot reach a newer one; they
 * are the ids of the -R `listen` / `unlisten` messages and stream headers.
 */
import { EventEmitter } from 'node:events';
import type net from 'node:net';
import type { DynamicSpec } from './client-dynamic.js';
import type { RemoteForwardLookup } from './client-streams.js';
import { TunnelErrorCode } from './errors.js';
import { proxyProtocolOf, type ForwardSpec } from './forward.js';
import type { LocalListener, LocalListeners } from './local-listeners.js';
import type { TargetPattern } from './policy.js';
import type { ProxyProtocolVersion } from './proxy-protocol.js';
import type { RemoteForwardResult, Withdrawals } from './remote-forwards.js';

export type ForwardKind = 'local' | 'remote' | 'dynamic';

/** Where a -R forward stands with the server: asked for (or to be asked at the next session), listening, or refused. */
export type RemoteForwardState = 'pending' | 'listening' | 'refused';

/** One forward as `TunnelClient.forwards()` lists it. */
export type ForwardInfo =
  /** -L: `address` is where it listens here (null until bound). */
  | { id: number; kind: 'local'; spec: ForwardSpec; address: net.AddressInfo | null }
  /** -D: `address` is where its SOCKS listener listens here (null until bound). */
  | { id: number; kind: 'dynamic'; spec: DynamicSpec; address: net.AddressInfo | null }
  /**
   * -R: `port` is the one the server listens on (null until it said); `error` why it refused, if it did;
   * `proxyProtocol` the PROXY header its target gets (the forward's own setting, else connect's; undefined: none).
   */
  | { id: number; kind: 'remote'; spec: ForwardSpec; state: RemoteForwardState; port: number | null; error: { code: string; message: string } | null; proxyProtocol: 'v1' | 'v2' | undefined };

/** A spec of the kind it belongs to. */
export type ForwardSpecOf<K extends ForwardKind> = K extends 'dynamic' ? DynamicSpec : ForwardSpec;

interface ListenerEntry<S extends DynamicSpec> {
  spec: S;
  listener: LocalListener<S> | null;
}

interface RemoteEntry {
  spec: ForwardSpec;
  state: RemoteForwardState;
  port: number | null;
  error: { code: string; message: string } | null;
  /** A `listen` went out for it in the server session now held (a resume keeps the server's listeners; a fresh session has none). */
  requested: boolean;
}

/** Same spec, same forward: what a reload compares (a -R keeps its granted port, a -L its listener). */
export function forwardKey(kind: ForwardKind, spec: ForwardSpec | DynamicSpec): string {
  if (kind === 'dynamic') return JSON.stringify([kind, spec.bindHost, spec.bindPort]);
  const forward = spec as ForwardSpec;
  const dynamic = forward.dynamic === true;
  return JSON.stringify([kind, forward.bindHost, forward.bindPort, dynamic, dynamic ? null : forward.targetHost, dynamic ? null : forward.targetPort, forward.proxyProtocol ?? null]);
}

export class ClientForwards extends EventEmitter<{ withdrawn: [id: number] }> implements RemoteForwardLookup, Withdrawals {
  readonly localListeners: LocalListeners<ForwardSpec>;
  readonly socksListeners: LocalListeners<DynamicSpec>;
  /** What a reverse dynamic -R may reach; replaced whole by a reload. */
  allowTarget: readonly TargetPattern[];
  /** The PROXY header version of -R forwards that name none (a restart changes it). */
  readonly proxyProtocol: ProxyProtocolVersion | undefined;
  /** Ports the server picked for -R forwards that asked for port 0, by id: asked for again at a reconnect. */
  readonly grantedPorts = new Map<number, number>();
  #nextId = 0;
  readonly #local = new Map<number, ListenerEntry<ForwardSpec>>();
  readonly #dynamic = new Map<number, ListenerEntry<DynamicSpec>>();
  readonly #remote = new Map<number, RemoteEntry>();
  /** -R ids withdrawn in the server session now held: said again after each resume, as an unlisten may have died with a link. */
  readonly #withdrawn = new Set<number>();
  /** Ids added while running (`forward add`), not from the options: a reload leaves them alone. */
  readonly #runtime = new Set<number>();

  constructor(
    listeners: { local: LocalListeners<ForwardSpec>; socks: LocalListeners<DynamicSpec> },
    initial: { local: readonly ForwardSpec[]; remote: readonly ForwardSpec[]; dynamic: readonly DynamicSpec[]; allowTarget: readonly TargetPattern[]; proxyProtocol?: ProxyProtocolVersion | undefined },
  ) {
    super();
    this.localListeners = listeners.local;
    this.socksListeners = listeners.socks;
    this.allowTarget = initial.allowTarget;
    this.proxyProtocol = initial.proxyProtocol;
    // -R first: a client that never reloads numbers them 0, 1, … on the wire, as before ids were stable.
    for (const spec of initial.remote) this.#remote.set(this.#nextId++, newRemote(spec));
    for (const spec of initial.local) this.#local.set(this.#nextId++, { spec, listener: null });
    for (const spec of initial.dynamic) this.#dynamic.set(this.#nextId++, { spec, listener: null });
  }

  get counts(): { local: number; remote: number; dynamic: number } {
    return { local: this.#local.size, remote: this.#remote.size, dynamic: this.#dynamic.size };
  }

  /** Every forward, -L then -R then -D, each in the order added. */
  list(): ForwardInfo[] {
    return [
      ...[...this.#local].map(([id, { spec, listener }]): ForwardInfo => ({ id, kind: 'local', spec, address: listener?.address ?? null })),
      ...[...this.#remote].map(([id, entry]): ForwardInfo => ({ id, kind: 'remote', spec: entry.spec, state: entry.state, port: entry.port, error: entry.error, proxyProtocol: proxyProtocolOf(entry.spec, this.proxyProtocol) })),
      ...[...this.#dynamic].map(([id, { spec, listener }]): ForwardInfo => ({ id, kind: 'dynamic', spec, address: listener?.address ?? null })),
    ];
  }

  info(id: number): ForwardInfo | undefined {
    return this.list().find((forward) => forward.id === id);
  }

  /** Binds every -L and -D listener not bound yet (at start); rejects with ERR_MUXTUN_BIND naming the first that failed. */
  async bindAll(onBound: (kind: 'local' | 'dynamic', address: net.AddressInfo, spec: ForwardSpec | DynamicSpec) => void): Promise<void> {
    for (const entry of this.#local.values()) {
      if (entry.listener) continue;
      entry.listener = await this.localListeners.bind(entry.spec);
      onBound('local', entry.listener.address, entry.spec);
    }
    for (const entry of this.#dynamic.values()) {
      if (entry.listener) continue;
      entry.listener = await this.socksListeners.bind(entry.spec);
      onBound('dynamic', entry.listener.address, entry.spec);
    }
  }

  /** A new -L or -D, bound now; rejects with ERR_MUXTUN_BIND (and keeps nothing) when it cannot listen. */
  async addBound(kind: 'local' | 'dynamic', spec: ForwardSpec | DynamicSpec): Promise<ForwardInfo> {
    const id = this.#nextId++;
    if (kind === 'local') {
      const listener = await this.localListeners.bind(spec as ForwardSpec);
      this.#local.set(id, { spec: spec as ForwardSpec, listener });
    } else {
      const listener = await this.socksListeners.bind(spec);
      this.#dynamic.set(id, { spec, listener });
    }
    return this.info(id)!;
  }

  /** A new -R, pending: the caller asks the server for it (now, or at the next session). */
  addRemote(spec: ForwardSpec): number {
    const id = this.#nextId++;
    this.#remote.set(id, newRemote(spec));
    return id;
  }

  /**
   * Removes a forward: a -L or -D listener stops accepting (its connections
   * go on); a -R is forgotten here, and `unlisten` tells whether the server
   * may hold a listener for it (the caller withdraws it there).
   */
  remove(id: number): { forward: ForwardInfo; unlisten: boolean } | undefined {
    const forward = this.info(id);
    if (!forward) return undefined;
    this.#runtime.delete(id);
    const local = this.#local.get(id);
    const dynamic = this.#dynamic.get(id);
    const remote = this.#remote.get(id);
    if (local) {
      this.#local.delete(id);
      if (local.listener) this.localListeners.closeOne(local.listener);
    } else if (dynamic) {
      this.#dynamic.delete(id);
      if (dynamic.listener) this.socksListeners.closeOne(dynamic.listener);
    } else if (remote) {
      this.#remote.delete(id);
      this.grantedPorts.delete(id);
      this.emit('withdrawn', id);
      const unlisten = remote.requested && remote.state !== 'refused';
      if (unlisten) this.#withdrawn.add(id);
      return { forward, unlisten };
    }
    return { forward, unlisten: false };
  }

  /** The -R forward a server stream names, if this client still has it. */
  remoteSpec(id: number): ForwardSpec | undefined {
    return this.#remote.get(id)?.spec;
  }

  /** The -R forwards to ask the server for: all of them at a fresh session, those it never heard of after a resume. Marks them asked. */
  takeUnrequested(): Array<{ id: number; spec: ForwardSpec }> {
    const out: Array<{ id: number; spec: ForwardSpec }> = [];
    for (const [id, entry] of this.#remote) {
      if (entry.requested) continue;
      entry.requested = true;
      out.push({ id, spec: entry.spec });
    }
    return out;
  }

  /** Marks forwards asked for (a single add while connected). */
  markRequested(id: number): void {
    const entry = this.#remote.get(id);
    if (entry) entry.requested = true;
  }

  /** A fresh server session holds no listener: every -R is to be asked for, and nothing withdrawn is pending. */
  freshSession(): void {
    for (const entry of this.#remote.values()) {
      entry.requested = false;
      entry.state = 'pending';
    }
    this.#withdrawn.clear();
  }

  /** -R ids withdrawn in this server session (to say again after a resume). */
  withdrawnIds(): number[] {
    return [...this.#withdrawn];
  }

  /** What the server answered; a forward removed meanwhile is ignored. */
  record(results: readonly RemoteForwardResult[]): void {
    for (const result of results) {
      const entry = this.#remote.get(result.id);
      if (!entry || (!result.ok && result.withdrawn)) continue;
      if (result.ok) {
        Object.assign(entry, { state: 'listening', port: result.port, error: null });
      } else if (result.code === TunnelErrorCode.SESSION_LOST) {
        // Unanswered: asked again on the next link (a resume keeps what the server did get).
        Object.assign(entry, { state: 'pending', requested: false });
      } else {
        Object.assign(entry, { state: 'refused', error: { code: result.code, message: result.message } });
      }
    }
  }

  /** Marks a forward as added while running (`forward add`): {@link diff} does not remove it. */
  markRuntime(id: number): void {
    if (this.info(id)) this.#runtime.add(id);
  }

  /**
   * The forwards from the options whose spec is not among `next` (to remove)
   * and the specs of `next` not held (to add), matched by {@link forwardKey}.
   * Forwards added while running stay: one that `next` names from now on is
   * the options' own (a later reload may remove it), the others are not touched.
   */
  diff(next: { local: readonly ForwardSpec[]; remote: readonly ForwardSpec[]; dynamic: readonly DynamicSpec[] }): {
    remove: number[];
    add: Array<{ kind: ForwardKind; spec: ForwardSpec | DynamicSpec }>;
    unchanged: number;
  } {
    const held = new Map<string, number[]>();
    // The options' own first, so a duplicate added while running is the one left over.
    const forwards = this.list().sort((a, b) => Number(this.#runtime.has(a.id)) - Number(this.#runtime.has(b.id)));
    for (const forward of forwards) {
      const key = forwardKey(forward.kind, forward.spec);
      held.set(key, [...(held.get(key) ?? []), forward.id]);
    }
    const add: Array<{ kind: ForwardKind; spec: ForwardSpec | DynamicSpec }> = [];
    let unchanged = 0;
    const wanted: Array<[ForwardKind, ReadonlyArray<ForwardSpec | DynamicSpec>]> = [['local', next.local], ['remote', next.remote], ['dynamic', next.dynamic]];
    for (const [kind, specs] of wanted) {
      for (const spec of specs) {
        const ids = held.get(forwardKey(kind, spec));
        if (ids && ids.length > 0) {
          this.#runtime.delete(ids.shift()!);
          unchanged++;
        } else {
          add.push({ kind, spec });
        }
      }
    }
    return { remove: [...held.values()].flat().filter((id) => !this.#runtime.has(id)), add, unchanged };
  }

  closeAll(): void {
    this.localListeners.close();
    this.socksListeners.close();
  }
}

function newRemote(spec: ForwardSpec): RemoteEntry {
  return { spec, state: 'pending', port: null, error: null, requested: false };
}
