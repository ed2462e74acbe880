/**
 * Agent pools (C5 for factory graphs). A factory export is costly to call
 * per run (it may build models, tools, clients), so the instances it builds
 * are kept and reused, under three rules:
 *
 * - An instance is leased to one run at a time: a leased instance is in no
 *   idle list, so no other lease can find it until its run releases it.
 * - Instances are kept per pool key (graph, user, and the part of the run's
 *   config the factory may depend on), at most `perUser` per user and `max`
 *   in all; over a cap, the least recently used idle instance is evicted,
 *   and when none is idle the run gets a transient instance, built for it
 *   and dropped after. So the pool never makes a run wait and never limits
 *   how many runs execute at once.
 * - Only an instance whose run succeeded goes back; one whose run failed,
 *   timed out, was cancelled or handed back may hold broken state and is
 *   dropped.
 *
 * The pool is per registry, so per process and per execution thread.
 */
import { createHash } from "node:crypto";
import type { RunnableConfig } from "@langchain/core/runnables";

export interface AgentPoolOptions {
  /** Instances kept per user (leased and idle), all graphs and configs together. */
  perUser: number;
  /** Instances kept in all. */
  max: number;
}

export const DEFAULT_AGENT_POOL: AgentPoolOptions = { perUser: 2, max: 100 };

/** One run's use of an instance; `release` is idempotent. */
export interface Lease<T> {
  readonly value: T;
  /** False when the pool was full for this run: the instance is dropped on release. */
  readonly pooled: boolean;
  /** Gives the instance back (`reuse`: its run succeeded and it is sound) or drops it. */
  release(reuse: boolean): void;
}

interface Entry<T> {
  key: string;
  user: string;
  value: T;
}

export interface AgentPoolStats {
  /** Instances kept (leased and idle). */
  kept: number;
  idle: number;
  leased: number;
  /** Instances built for a run, pooled or transient, since start. */
  built: number;
  /** Leases served by an idle instance, since start. */
  reused: number;
  /** Transient instances built because a cap was reached, since start. */
  transient: number;
  evicted: number;
}

/** The user key of runs without a user: one shared anonymous pool. */
const ANONYMOUS = "\u0000anonymous";

export class AgentPool<T> {
  readonly #options: AgentPoolOptions;
  /** Idle instances by pool key, most recently released last. */
  readonly #idle = new Map<string, Entry<T>[]>();
  /** Every idle instance, least recently released first (Map keeps insertion order). */
  readonly #lru = new Set<Entry<T>>();
  readonly #perUser = new Map<string, number>();
  #kept = 0;
  #leased = 0;
  #counters = { built: 0, reused: 0, transient: 0, evicted: 0 };

  constructor(options: Partial<AgentPoolOptions> = {}) {
    this.#options = { ...DEFAULT_AGENT_POOL, ...options };
  }

  /**
   * An instance for one run: an idle one of `key` if any, else a new one
   * built by `build` (kept when the caps allow, transient otherwise).
   */
  async lease(key: string, user: string | null, build: () => Promise<T>): Promise<Lease<T>> {
    const owner = user ?? ANONYMOUS;
    const idle = this.#idle.get(key);
    const found = idle?.pop();
    if (found !== undefined) {
      if (idle!.length === 0) this.#idle.delete(key);
      this.#lru.delete(found);
      this.#leased += 1;
      this.#counters.reused += 1;
      return this.#leaseOf(found);
    }
    // The slot is taken before the (async) build, so concurrent leases count it.
    if (!this.#reserve(owner)) {
      this.#counters.transient += 1;
      this.#counters.built += 1;
      const value = await build();
      return { value, pooled: false, release: () => {} };
    }
    this.#leased += 1;
    let value: T;
    try {
      value = await build();
    } catch (error) {
      this.#leased -= 1;
      this.#unreserve(owner);
      throw error;
    }
    this.#counters.built += 1;
    return this.#leaseOf({ key, user: owner, value });
  }

  stats(): AgentPoolStats {
    return { kept: this.#kept, idle: this.#lru.size, leased: this.#leased, ...this.#counters };
  }

  #leaseOf(entry: Entry<T>): Lease<T> {
    let released = false;
    return {
      value: entry.value,
      pooled: true,
      release: (reuse) => {
        if (released) return;
        released = true;
        this.#leased -= 1;
        if (!reuse) {
          this.#unreserve(entry.user);
          return;
        }
        const list = this.#idle.get(entry.key);
        if (list === undefined) this.#idle.set(entry.key, [entry]);
        else list.push(entry);
        this.#lru.add(entry);
      },
    };
  }

  /** Takes a kept slot for `user`, evicting idle instances to make room; false when only leased instances fill the caps. */
  #reserve(user: string): boolean {
    if ((this.#perUser.get(user) ?? 0) >= this.#options.perUser && !this.#evict((entry) => entry.user === user)) return false;
    if (this.#kept >= this.#options.max && !this.#evict(() => true)) return false;
    this.#perUser.set(user, (this.#perUser.get(user) ?? 0) + 1);
    this.#kept += 1;
    return true;
  }

  #unreserve(user: string): void {
    const count = (this.#perUser.get(user) ?? 1) - 1;
    if (count === 0) this.#perUser.delete(user);
    else this.#perUser.set(user, count);
    this.#kept -= 1;
  }

  /** Drops the least recently used idle instance that `which` accepts. */
  #evict(which: (entry: Entry<T>) => boolean): boolean {
    for (const entry of this.#lru) {
      if (!which(entry)) continue;
      this.#lru.delete(entry);
      const list = this.#idle.get(entry.key)!;
      list.splice(list.indexOf(entry), 1);
      if (list.length === 0) this.#idle.delete(entry.key);
      this.#unreserve(entry.user);
      this.#counters.evicted += 1;
      return true;
    }
    return false;
  }
}

/**
 * The configurable keys that differ from run to run (the run's identity,
 * where it starts, the worker's lease). They are left out of the pool key;
 * a factory that reads them while it builds gets an instance for that run
 * only (see `watchedConfig`).
 */
export const RUN_SPECIFIC_KEYS: ReadonlySet<string> = new Set(["thread_id", "run_id", "checkpoint_id", "checkpoint_ns", "checkpoint_map", "__baton_fence"]);

/** JSON with object keys sorted, so equal configs give equal keys. */
function stableJson(value: unknown): string {
  return JSON.stringify(value, (_key, inner: unknown) => {
    if (typeof inner !== "object" || inner === null || Array.isArray(inner)) return inner;
    return Object.fromEntries(Object.entries(inner).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  });
}

/**
 * The pool key of a run: its graph, its user, and every part of its config
 * but the run-specific ones (the configurable keys above and the metadata,
 * which carries the run's own metadata), hashed. Two runs with one key give
 * a factory the same input apart from those.
 */
export function poolKey(graphId: string, user: string | null, config: RunnableConfig): string {
  const { configurable = {}, metadata: _metadata, ...rest } = config;
  const shared = Object.fromEntries(Object.entries(configurable).filter(([name]) => !RUN_SPECIFIC_KEYS.has(name)));
  return createHash("sha256")
    .update(stableJson({ graphId, user, config: { ...rest, configurable: shared } }))
    .digest("base64url");
}

/**
 * The config a pooled instance's factory is given: its `configurable` and
 * `metadata` read through to the config of the run that holds the instance
 * now (`holder.current`), so a graph that keeps the config and reads it in a
 * node sees the current run's values, as when the factory was called per run.
 * A run-specific value read while the factory builds (`holder.building`) is
 * baked into the instance: it is marked `tainted`, and dropped after its run.
 */
export interface ConfigHolder {
  current: RunnableConfig;
  building: boolean;
  tainted: boolean;
}

/** What `ownKeys` reads, for the `specific` test: listing the keys. */
const LISTING = Symbol("listing");

export function watchedConfig(holder: ConfigHolder): RunnableConfig {
  const view = (part: "configurable" | "metadata", specific: (name: string | symbol) => boolean): Record<string, unknown> => {
    const now = () => (holder.current[part] ??= {}) as Record<string | symbol, unknown>;
    const touch = (name: string | symbol) => {
      if (holder.building && specific(name)) holder.tainted = true;
    };
    // A write reaches the current run's config, as when the factory had it
    // itself; made while building, later runs would not have it: tainted.
    const write = () => {
      if (holder.building) holder.tainted = true;
      return now();
    };
    return new Proxy({}, {
      get: (_target, name) => (touch(name), now()[name]),
      has: (_target, name) => (touch(name), name in now()),
      ownKeys: () => (touch(LISTING), Reflect.ownKeys(now())),
      getOwnPropertyDescriptor: (_target, name) => {
        touch(name);
        const descriptor = Reflect.getOwnPropertyDescriptor(now(), name);
        // Reported configurable: the (empty) target holds none of these keys.
        return descriptor === undefined ? undefined : { ...descriptor, configurable: true };
      },
      set: (_target, name, value) => Reflect.set(write(), name, value),
      defineProperty: (_target, name, descriptor) => Reflect.defineProperty(write(), name, descriptor),
      deleteProperty: (_target, name) => Reflect.deleteProperty(write(), name),
    });
  };
  // Listing the keys tells whether a run has a checkpoint_id: run-specific too.
  const configurable = view("configurable", (name) => (typeof name === "symbol" ? name === LISTING : RUN_SPECIFIC_KEYS.has(name)));
  // Every metadata value may be the run's own; symbols are inspection (util.inspect), not data.
  const metadata = view("metadata", (name) => typeof name === "string" || name === LISTING);
  const { configurable: _c, metadata: _m, ...rest } = holder.current;
  return { ...rest, configurable, metadata };
}
