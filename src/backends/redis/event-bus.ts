/**
 * Event bus on Redis for scale-out: any API process serves the events of a
 * run executing on any worker (C8).
 *
 * - A run's events are a Redis Stream (`<prefix>run:<id>`), with Redis's own
 *   ordered ids (`<ms>-<n>`, the ids clients send back as Last-Event-ID),
 *   capped at `maxLen` entries. After the run ends they are kept for the
 *   `retainMs` given to `end` (resumable runs); otherwise for `drainMs`, so
 *   readers in other processes can finish, while new joiners are told the
 *   stream is gone (as the in-memory bus does).
 * - Each append is followed by a PUBLISH on the run's channel, which wakes
 *   the readers of that run in every process; a reader that hears nothing
 *   reads the stream anyway every `idlePollMs`, so a lost notification only
 *   delays it.
 * - Cancels and wake-ups are PUBLISHes on `<prefix>cancel` and
 *   `<prefix>work`. They are hints: the cancel is in Postgres first (workers
 *   re-read it on every lease renewal) and workers poll the queue, so Redis
 *   being away or losing its data loses no run.
 *
 * - A thread's log (thread streams) is a Redis Stream too
 *   (`<prefix>thread:<id>`): the same script that appends a run's event
 *   appends it there (fields `r` run id, `e`, `d`), so the two never
 *   disagree on what a stale attempt may publish. It keeps at most
 *   `threadMaxLen` entries and expires `threadRetentionMs` after its last
 *   one; its readers are woken on `<prefix>events:thread:<id>`.
 *
 * Streams in flight when Redis restarts lose the events written before the
 * restart; readers then finish when `isFinished` (the durable record) says
 * the run is over. A quiet reader asks it after the bus had trouble and
 * while the bus is not healthy (`healthy`), and otherwise only every
 * FINISHED_SAFETY_MS (an end marker lost without an outage seen by this
 * process: the publishing process lost its connection).
 */
import { Redis } from "ioredis";
import type { Logger } from "../../core/logger.ts";
import type { EventBus } from "../../core/ports.ts";
import type { CancelAction, RunEvent, ThreadEvent } from "../../core/types.ts";

export interface RedisEventBusOptions {
  url: string;
  /** Prefix of every key and channel, so several deployments (or tests) share one Redis. */
  prefix: string;
  /** How long readers may still drain a finished, non-retained stream. */
  drainMs?: number;
  /** Entries a run's stream keeps at most (older ones are trimmed). */
  maxLen: number;
  /** How long a reader waits for a notification before reading the stream anyway. */
  idlePollMs?: number;
  /** Entries a thread's log keeps at most (default 10,000). */
  threadMaxLen?: number;
  /** How long a thread's log is kept after its last entry (default 5 minutes). */
  threadRetentionMs?: number;
  /** Whether the durable record says the run is over (ends readers whose end marker was lost). */
  isFinished?: (runId: string) => Promise<boolean>;
  logger?: Logger;
}

const END = "__end__";
/** How long a new reader waits for Redis to confirm its subscription. */
const SUBSCRIBE_WAIT_MS = 1_000;
/**
 * How long after any trouble (a connection dropped or back, a command
 * failed) the bus still says it is not healthy: longer than the pauses
 * between the health checks of waits (1 s) and of quiet readers
 * (`idlePollMs`), so that none misses an outage, and long enough for
 * ioredis to subscribe again after a reconnect.
 */
const HEALTH_SETTLE_MS = 5_000;
/** While the bus is healthy, how often a quiet reader asks `isFinished` anyway (an end marker lost without an outage seen here). */
const FINISHED_SAFETY_MS = 30_000;
/** Entries read at once: a reader that stops reading holds at most one batch here (sse.ts bounds the rest). */
const READ_BATCH = 64;
/** TTL of a run's stream while it runs; `end` sets the real retention. */
const OPEN_STREAM_TTL_MS = 24 * 3_600_000;
const VALID_ID = /^\d+(-\d+)?$/;
/** How a thread's log is named among the watched streams (run ids are UUIDs, so no run is named so). */
const THREAD_WATCH = "thread:";
/** The attempt key's value once a run's stream has ended. */
const ENDED = "ended";
/**
 * How much longer than its stream the ended mark is kept: a worker that lost
 * its lease may still be publishing for about one step of its graph after the
 * run ended elsewhere; its events must not recreate the stream.
 */
const ENDED_MARK_TAIL_MS = 10 * 60_000;

/**
 * Appends one event, in one step on the server. KEYS[2] holds the latest
 * attempt that published, or "ended" once the run's stream was ended: an
 * event is dropped after the end, and, when it carries an attempt (ARGV[1]
 * > 0), once a later attempt has published; so a stale attempt never
 * interleaves with the new one nor reopens an ended stream. Then the
 * stream's expiry is renewed and readers are woken.
 * With a third key (the run's thread's log), the event is appended there
 * too, and that log's readers are woken.
 * KEYS: stream, latest attempt[, thread log]. ARGV: attempt, max length,
 * event, data, ttl ms, channel[, run id, thread max length, thread ttl ms,
 * thread channel].
 */
const PUBLISH_SCRIPT = `
local latest = redis.call('GET', KEYS[2])
if latest == '${ENDED}' then return 0 end
local attempt = tonumber(ARGV[1])
if attempt > 0 then
  if attempt < tonumber(latest or '0') then return 0 end
  redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[5])
end
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 'e', ARGV[3], 'd', ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('PUBLISH', ARGV[6], '1')
if KEYS[3] then
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[8], '*', 'r', ARGV[7], 'e', ARGV[3], 'd', ARGV[4])
  redis.call('PEXPIRE', KEYS[3], ARGV[9])
  redis.call('PUBLISH', ARGV[10], '1')
end
return 1`;

/** Orders two stream ids (`<ms>-<n>`, or a bare `<ms>`). */
function compareIds(a: string, b: string): number {
  const [am = 0, an = 0] = a.split("-").map(Number);
  const [bm = 0, bn = 0] = b.split("-").map(Number);
  return am - bm || an - bn;
}

interface Watch {
  /** Set by a notification; cleared by the reader before it reads. */
  dirty: boolean;
  wake: (() => void) | undefined;
}

export class RedisEventBus implements EventBus {
  readonly #commands: Redis;
  readonly #subscriber: Redis;
  readonly #options: Required<Omit<RedisEventBusOptions, "isFinished" | "logger">> & Pick<RedisEventBusOptions, "isFinished" | "logger">;
  readonly #watches = new Map<string, Set<Watch>>();
  readonly #cancelListeners = new Set<(runId: string, action: CancelAction) => void>();
  readonly #workListeners = new Set<() => void>();
  readonly #ready: Promise<unknown>;
  #lastErrorLog = 0;
  #closed = false;
  /** Set once the bus listens for cancels and wake-ups. */
  #subscribed = false;
  /** Troubles seen so far, and when the last one was. */
  #troubles = 0;
  #troubleAtMs = 0;

  constructor(options: RedisEventBusOptions) {
    this.#options = { idlePollMs: 2_000, drainMs: 60_000, threadMaxLen: 10_000, threadRetentionMs: 300_000, ...options };
    // A command cut off by a dropped connection is failed, never re-sent: a
    // re-sent XADD would show a client the same event twice.
    const common = { maxRetriesPerRequest: 3, autoResendUnfulfilledCommands: false, lazyConnect: false };
    this.#commands = new Redis(options.url, common);
    this.#subscriber = new Redis(options.url, { ...common, maxRetriesPerRequest: null });
    for (const connection of [this.#commands, this.#subscriber]) {
      connection.on("error", (error: Error) => this.#logError("redis:error", error));
      // Events published while a connection is away are lost; so may be those of the moments it takes to come back.
      connection.on("close", () => this.#trouble());
      connection.on("ready", () => {
        if (this.#troubles > 0) this.#trouble();
      });
    }
    this.#subscriber.on("message", (channel: string, message: string) => this.#onMessage(channel, message));
    this.#ready = this.#subscriber.subscribe(this.#channel("cancel"), this.#channel("work"));
    this.#ready.then(
      () => (this.#subscribed = true),
      () => undefined,
    );
  }

  #trouble(): void {
    this.#troubles += 1;
    this.#troubleAtMs = Date.now();
  }

  /**
   * Connected, subscribed, and without trouble for HEALTH_SETTLE_MS: what
   * was published meanwhile reached the readers (EventBus.healthy).
   */
  healthy(): boolean {
    return (
      !this.#closed &&
      this.#subscribed &&
      this.#commands.status === "ready" &&
      this.#subscriber.status === "ready" &&
      Date.now() - this.#troubleAtMs >= HEALTH_SETTLE_MS
    );
  }

  /** Resolves once the bus listens for cancels and wake-ups. */
  async ready(): Promise<void> {
    await this.#ready;
  }

  #key(runId: string): string {
    return `${this.#options.prefix}run:${runId}`;
  }

  #channel(name: string): string {
    return `${this.#options.prefix}${name}`;
  }

  #logError(event: string, error: unknown, fields: Record<string, unknown> = {}): void {
    this.#trouble();
    // Redis being away makes every command fail; say so once every 5 s.
    const now = Date.now();
    if (now - this.#lastErrorLog < 5_000 || this.#closed) return;
    this.#lastErrorLog = now;
    this.#options.logger?.warn(event, { ...fields, error: error instanceof Error ? error.message : String(error) });
  }

  #onMessage(channel: string, message: string): void {
    if (channel === this.#channel("work")) {
      for (const listener of this.#workListeners) listener();
    } else if (channel === this.#channel("cancel")) {
      let cancel: { runId: string; action: CancelAction };
      try {
        cancel = JSON.parse(message) as { runId: string; action: CancelAction };
      } catch (error) {
        // Not ours (another publisher on the channel); the durable flag still reaches the worker.
        this.#logError("bus:bad-cancel-message", error);
        return;
      }
      for (const listener of this.#cancelListeners) listener(cancel.runId, cancel.action);
    } else if (channel.startsWith(this.#channel("events:"))) {
      for (const watch of this.#watches.get(channel.slice(this.#channel("events:").length)) ?? []) {
        watch.dirty = true;
        watch.wake?.();
      }
    }
  }

  publish(runId: string, event: string, data: unknown, attempt?: number, threadId?: string): void {
    const keys = [this.#key(runId), this.#attemptKey(runId)];
    const args: (string | number)[] = [
      attempt ?? 0,
      this.#options.maxLen,
      event,
      JSON.stringify(data ?? null),
      // A stream whose end never arrives (a lost worker, a Redis blip at the end) still expires.
      OPEN_STREAM_TTL_MS,
      this.#channel(`events:${runId}`),
    ];
    if (threadId !== undefined) {
      keys.push(this.#threadKey(threadId));
      args.push(runId, this.#options.threadMaxLen, this.#options.threadRetentionMs, this.#channel(`events:${THREAD_WATCH}${threadId}`));
    }
    // EVAL with the script's text, not EVALSHA: ioredis re-sends an
    // EVALSHA that Redis does not know (after a restart) as EVAL, and later
    // events sent meanwhile would overtake it. Redis caches the compiled script.
    this.#commands
      .eval(PUBLISH_SCRIPT, keys.length, ...keys, ...args)
      .catch((error: unknown) => this.#logError("bus:publish-failed", error, { run_id: runId, event }));
  }

  #threadKey(threadId: string): string {
    return `${this.#options.prefix}thread:${threadId}`;
  }

  #attemptKey(runId: string): string {
    return `${this.#options.prefix}attempt:${runId}`;
  }

  end(runId: string, retainMs: number): void {
    const key = this.#key(runId);
    // MULTI, not a plain pipeline: no publish may land between the end
    // marker and the 'ended' mark (it would re-arm the stream's long expiry).
    const pipeline = this.#commands.multi().xadd(key, "*", "e", END, "d", "null");
    const keptMs = retainMs > 0 ? retainMs : this.#options.drainMs;
    pipeline.pexpire(key, keptMs).set(this.#attemptKey(runId), ENDED, "PX", keptMs + ENDED_MARK_TAIL_MS);
    if (retainMs <= 0) pipeline.set(this.#droppedKey(runId), "1", "PX", this.#options.drainMs);
    pipeline
      .publish(this.#channel(`events:${runId}`), "1")
      .exec()
      .catch((error: unknown) => this.#logError("bus:end-failed", error, { run_id: runId }));
  }

  #droppedKey(runId: string): string {
    return `${this.#options.prefix}dropped:${runId}`;
  }

  async has(runId: string): Promise<boolean> {
    try {
      const [stream, dropped] = await Promise.all([this.#commands.exists(this.#key(runId)), this.#commands.exists(this.#droppedKey(runId))]);
      return stream === 1 && dropped === 0;
    } catch {
      return false;
    }
  }

  /**
   * Listens for the run's notifications. Waits for Redis to confirm the
   * subscription (so no notification after the first read is missed), but
   * not past SUBSCRIBE_WAIT_MS or the signal: with Redis away, the reader
   * goes on with its idle polls instead of hanging.
   */
  async #watch(runId: string, signal: AbortSignal): Promise<{ watch: Watch; close: () => void }> {
    const watch: Watch = { dirty: false, wake: undefined };
    let set = this.#watches.get(runId);
    let subscribed: Promise<unknown> | undefined;
    if (set === undefined) {
      set = new Set();
      this.#watches.set(runId, set);
      subscribed = this.#subscriber.subscribe(this.#channel(`events:${runId}`)).catch((error: unknown) => this.#logError("bus:subscribe-failed", error));
    }
    set.add(watch);
    const close = () => {
      set.delete(watch);
      if (set.size === 0 && this.#watches.get(runId) === set) {
        this.#watches.delete(runId);
        if (!this.#closed) void this.#subscriber.unsubscribe(this.#channel(`events:${runId}`)).catch(() => undefined);
      }
    };
    if (subscribed !== undefined) {
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          signal.removeEventListener("abort", done);
          resolve();
        };
        const timer = setTimeout(done, SUBSCRIBE_WAIT_MS);
        signal.addEventListener("abort", done, { once: true });
        void subscribed.then(done);
      });
    }
    return { watch, close };
  }

  /** Waits for a notification, the idle poll, or the signal; true if notified. */
  #wait(watch: Watch, signal: AbortSignal): Promise<boolean> {
    if (watch.dirty) return Promise.resolve(true);
    return new Promise<boolean>((resolve) => {
      const done = (notified: boolean) => {
        clearTimeout(timer);
        signal.removeEventListener("abort", onAbort);
        watch.wake = undefined;
        resolve(notified);
      };
      const onAbort = () => done(false);
      const timer = setTimeout(() => done(false), this.#options.idlePollMs);
      watch.wake = () => done(true);
      signal.addEventListener("abort", onAbort, { once: true });
    });
  }

  /**
   * When the stream was trimmed (`maxLen`) past where this reader starts,
   * the error event that says so; undefined otherwise, or when Redis cannot
   * tell (before 7.0, no `entries-added`).
   */
  async #truncation(runId: string, after: string | undefined, log?: { key: string; what: string; bound: number }): Promise<RunEvent | undefined> {
    let info: unknown[];
    try {
      info = (await this.#commands.xinfo("STREAM", log?.key ?? this.#key(runId))) as unknown[];
    } catch {
      return undefined; // no such stream yet, or Redis away
    }
    const field = (name: string) => info[info.indexOf(name) + 1];
    const added = Number(field("entries-added"));
    const length = Number(field("length"));
    const first = (field("first-entry") as [string, unknown] | null)?.[0];
    if (!Number.isFinite(added) || added <= length || first === undefined) return undefined;
    if (after !== undefined && compareIds(after, first) >= 0) return undefined;
    return {
      id: after ?? "0",
      event: "error",
      data: {
        error: "StreamTruncated",
        message: `The oldest events of ${log?.what ?? `run ${runId}`} were dropped (it keeps its last ${log?.bound ?? this.#options.maxLen} events); events before ${first} may be missing.`,
      },
    };
  }

  async *subscribe(runId: string, afterId: string | undefined, signal: AbortSignal): AsyncIterable<RunEvent> {
    const after = afterId !== undefined && VALID_ID.test(afterId.trim()) ? afterId.trim() : undefined;
    let cursor = after !== undefined ? `(${after}` : "-";
    const { watch, close } = await this.#watch(runId, signal);
    try {
      const truncated = await this.#truncation(runId, after);
      if (truncated !== undefined) yield truncated;
      let finishedChecks = 0;
      let lastCheck = { atMs: Date.now(), troubles: this.#troubles };
      while (!signal.aborted && !this.#closed) {
        watch.dirty = false;
        let entries: [id: string, fields: string[]][];
        try {
          entries = await this.#commands.xrange(this.#key(runId), cursor, "+", "COUNT", READ_BATCH);
        } catch (error) {
          this.#logError("bus:read-failed", error, { run_id: runId });
          entries = [];
        }
        for (const [id, fields] of entries) {
          cursor = `(${id}`;
          const event = fields[1]!;
          if (event === END) return;
          yield { id, event, data: JSON.parse(fields[3]!) as unknown };
          if (signal.aborted) return;
        }
        // A full batch: there may be more already.
        if (entries.length === READ_BATCH) continue;
        const notified = await this.#wait(watch, signal);
        if (!notified && !signal.aborted && this.#options.isFinished !== undefined && (finishedChecks > 0 || this.#finishedCheckDue(lastCheck))) {
          lastCheck = { atMs: Date.now(), troubles: this.#troubles };
          // Quiet for a while: if the run is over and its end marker was lost
          // (Redis restarted), read once more and stop.
          if (await this.#options.isFinished(runId).catch(() => false)) {
            if (++finishedChecks > 1) return;
            watch.dirty = true;
          }
        }
      }
    } finally {
      close();
    }
  }

  async threadLogHead(threadId: string): Promise<string | undefined> {
    const newest = await this.#commands.xrevrange(this.#threadKey(threadId), "+", "-", "COUNT", 1);
    return newest[0]?.[0];
  }

  async *subscribeThread(threadId: string, afterId: string | undefined, signal: AbortSignal): AsyncIterable<ThreadEvent> {
    const key = this.#threadKey(threadId);
    const trimmed = afterId?.trim();
    const after = trimmed !== undefined && VALID_ID.test(trimmed) ? trimmed : undefined;
    const { watch, close } = await this.#watch(`${THREAD_WATCH}${threadId}`, signal);
    try {
      let cursor: string;
      if (afterId === undefined) {
        // From now: after the newest entry there is (read once the watch is on, so nothing after it is missed).
        const newest = await this.#commands.xrevrange(key, "+", "-", "COUNT", 1).catch(() => []);
        cursor = newest[0] !== undefined ? `(${newest[0][0]}` : "-";
      } else {
        cursor = after !== undefined ? `(${after}` : "-";
        const truncated = await this.#truncation(threadId, after, { key, what: `thread ${threadId}'s stream`, bound: this.#options.threadMaxLen });
        if (truncated !== undefined) yield { ...truncated, run_id: "" };
      }
      while (!signal.aborted && !this.#closed) {
        watch.dirty = false;
        let entries: [id: string, fields: string[]][];
        try {
          entries = await this.#commands.xrange(key, cursor, "+", "COUNT", READ_BATCH);
        } catch (error) {
          this.#logError("bus:read-failed", error, { thread_id: threadId });
          entries = [];
        }
        for (const [id, fields] of entries) {
          cursor = `(${id}`;
          yield { id, run_id: fields[1]!, event: fields[3]!, data: JSON.parse(fields[5]!) as unknown };
          if (signal.aborted) return;
        }
        if (entries.length === READ_BATCH) continue;
        await this.#wait(watch, signal);
      }
    } finally {
      close();
    }
  }

  /**
   * Whether a quiet reader should ask the durable record if its run is over:
   * when the bus had trouble since the reader last asked (an end marker may
   * be lost), or is not healthy, and otherwise only every FINISHED_SAFETY_MS,
   * so that many readers of quiet runs do not each read the database every
   * `idlePollMs`.
   */
  #finishedCheckDue(last: { atMs: number; troubles: number }): boolean {
    return this.#troubles !== last.troubles || !this.healthy() || Date.now() - last.atMs >= FINISHED_SAFETY_MS;
  }

  signalCancel(runId: string, action: CancelAction): void {
    this.#commands.publish(this.#channel("cancel"), JSON.stringify({ runId, action })).catch((error: unknown) => this.#logError("bus:cancel-failed", error, { run_id: runId }));
  }

  onCancel(listener: (runId: string, action: CancelAction) => void): () => void {
    this.#cancelListeners.add(listener);
    return () => this.#cancelListeners.delete(listener);
  }

  signalWork(): void {
    this.#commands.publish(this.#channel("work"), "1").catch((error: unknown) => this.#logError("bus:wake-failed", error));
  }

  onWork(listener: () => void): () => void {
    this.#workListeners.add(listener);
    return () => this.#workListeners.delete(listener);
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const set of this.#watches.values()) for (const watch of set) watch.wake?.();
    // QUIT lets queued commands finish; a Redis that is away would make it wait forever.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled([this.#commands.quit(), this.#subscriber.quit()]),
      new Promise((resolve) => (timer = setTimeout(resolve, 1_000))),
    ]);
    clearTimeout(timer);
    this.#commands.disconnect();
    this.#subscriber.disconnect();
  }
}
