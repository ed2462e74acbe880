/**
 * Idempotency keys on both backends (the IdempotencyKeys port) and the core
 * rule on top of them (src/core/idempotency.ts): a key is claimed once,
 * concurrent claims of one key have one winner, an expired key gives way,
 * a released key is free, keys of different callers never meet, a retry
 * of a request still in flight waits for its answer, and a claim whose
 * request never answers is taken over by a retry once it is old enough.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPostgresBackend } from "../../src/backends/postgres/index.ts";
import { createSqliteBackend } from "../../src/backends/sqlite/index.ts";
import { SYSTEM_CONTEXT, type RequestContext } from "../../src/core/context.ts";
import { fingerprintOf, Idempotency } from "../../src/core/idempotency.ts";
import type { Backend } from "../../src/core/ports.ts";
import { ManualClock } from "../../src/testing/index.ts";
import { freshDatabase, type TestDatabase } from "../helpers/postgres.ts";
import { until } from "../helpers/server.ts";

const clock = new ManualClock();
let database: TestDatabase;
const backends: Record<string, Backend> = {};

beforeAll(async () => {
  database = await freshDatabase("idempotency");
  backends.sqlite = createSqliteBackend({ path: ":memory:", busyTimeoutMs: 0, clock });
  backends.postgres = await createPostgresBackend({ url: database.url, poolSize: 8, clock, migrate: true });
});
afterAll(async () => {
  for (const backend of Object.values(backends)) await backend.close();
  await database?.drop();
});

const withKey = (key: string, identity?: string): RequestContext => ({
  ...SYSTEM_CONTEXT,
  idempotencyKey: key,
  principal: identity === undefined ? null : { identity, display_name: identity, is_authenticated: true, permissions: [] },
});

for (const kind of ["sqlite", "postgres"] as const) {
  describe(`idempotency keys on ${kind}`, () => {
    const keys = () => backends[kind]!.idempotency;

    it("claims a key once; concurrent claims have one winner; the others see the first record", async () => {
      const key = `k-${crypto.randomUUID()}`;
      const claims = await Promise.all(Array.from({ length: 20 }, (_, i) => keys().claim("run:anonymous", key, { fingerprint: "f", resource_id: `r${i}` }, clock.nowMs(), 1_000)));
      const winners = claims.filter((c) => c.claimed);
      expect(winners).toHaveLength(1);
      const losers = claims.filter((c) => !c.claimed);
      const first = (losers[0] as { record: { resource_id: string } }).record.resource_id;
      const at = clock.nowMs();
      for (const loser of losers) expect(loser).toEqual({ claimed: false, record: { fingerprint: "f", resource_id: first, response: null, claimed_at_ms: at } });
      await keys().complete("run:anonymous", key, { resource_id: first, claimed_at_ms: at }, { run_id: first });
      expect(await keys().get("run:anonymous", key, clock.nowMs())).toEqual({ fingerprint: "f", resource_id: first, response: { run_id: first }, claimed_at_ms: at });
    });

    it("lets an expired key and a released key be claimed again; purges expired keys", async () => {
      const key = `k-${crypto.randomUUID()}`;
      const at = clock.nowMs();
      const claim = (resource_id: string) => ({ resource_id, claimed_at_ms: at });
      expect((await keys().claim("s", key, { fingerprint: "f", resource_id: "r1" }, at, 1_000)).claimed).toBe(true);
      await keys().release("s", key, claim("r1"));
      expect((await keys().claim("s", key, { fingerprint: "g", resource_id: "r2" }, at, 1_000)).claimed).toBe(true);
      // A claim is completed and released by its own request only (one whose key expired and was taken over does neither).
      await keys().complete("s", key, claim("r1"), { id: "r1" });
      await keys().release("s", key, claim("r1"));
      expect(await keys().get("s", key, clock.nowMs())).toEqual({ fingerprint: "g", resource_id: "r2", response: null, claimed_at_ms: at });
      await keys().complete("s", key, claim("r2"), { id: "r2" });
      // A completed key is not released by a late failure report.
      await keys().release("s", key, claim("r2"));
      expect((await keys().claim("s", key, { fingerprint: "h", resource_id: "r3" }, clock.nowMs(), 1_000)).claimed).toBe(false);
      clock.advance(1_000);
      expect(await keys().get("s", key, clock.nowMs())).toBeNull();
      expect((await keys().claim("s", key, { fingerprint: "h", resource_id: "r3" }, clock.nowMs(), 1_000)).claimed).toBe(true);
      clock.advance(1_000);
      expect(await keys().purge(clock.nowMs())).toBeGreaterThanOrEqual(1);
      expect(await keys().get("s", key, Number.MIN_SAFE_INTEGER)).toBeNull();
    });

    it("creates once per key and caller: a retry in flight waits for the first answer; another caller's key is its own", async () => {
      const idempotency = new Idempotency({ keys: keys(), clock, ttlMs: 60_000 });
      const key = `k-${crypto.randomUUID()}`;
      let release!: () => void;
      const held = new Promise<void>((resolve) => (release = resolve));
      let created = 0;
      let started!: () => void;
      const running = new Promise<void>((resolve) => (started = resolve));
      const create = async (id: string) => {
        created += 1;
        started();
        await held;
        return { id };
      };
      const existing = async (record: { resource_id: string }) => ({ id: record.resource_id });
      const none = async () => null;
      const first = idempotency.once(withKey(key, "alice"), "run", { a: 1 }, create, existing, none);
      await running;
      const retries = Array.from({ length: 5 }, () => idempotency.once(withKey(key, "alice"), "run", { a: 1 }, create, existing, none));
      const other = await idempotency.once(withKey(key, "bob"), "run", { a: 1 }, async (id) => ({ id: `bob-${id}` }), existing, none);
      release();
      const answers = await Promise.all([first, ...retries]);
      expect(created).toBe(1);
      expect(new Set(answers.map((a) => a.id)).size).toBe(1);
      expect(other.id.startsWith("bob-")).toBe(true);
      await expect(idempotency.once(withKey(key, "alice"), "run", { a: 2 }, create, existing, none)).rejects.toThrow(/already used with a different request/);
      // The same key for a thread is another key.
      expect((await idempotency.once(withKey(key, "alice"), "thread", { a: 2 }, async (id) => ({ id }), existing, none)).id).not.toBe(answers[0].id);
    });

    it("hands a claim over once: the old claim can then neither answer nor free the key", async () => {
      const key = `k-${crypto.randomUUID()}`;
      const old = { resource_id: "r1", claimed_at_ms: clock.nowMs() };
      expect((await keys().claim("s", key, { fingerprint: "f", resource_id: "r1" }, old.claimed_at_ms, 60_000)).claimed).toBe(true);
      clock.advance(10);
      const taken = await Promise.all(Array.from({ length: 5 }, () => keys().takeOver("s", key, old, clock.nowMs())));
      expect(taken.filter(Boolean)).toHaveLength(1);
      await keys().complete("s", key, old, { id: "late" });
      await keys().release("s", key, old);
      const now = { resource_id: "r1", claimed_at_ms: clock.nowMs() };
      expect(await keys().get("s", key, clock.nowMs())).toEqual({ fingerprint: "f", response: null, ...now });
      await keys().complete("s", key, now, { id: "r1" });
      // An answered key is not taken over.
      expect(await keys().takeOver("s", key, now, clock.nowMs() + 1)).toBe(false);
      expect((await keys().get("s", key, clock.nowMs()))?.response).toEqual({ id: "r1" });
    });

    it("a retry takes over a claim unanswered for claimTimeoutMs: it creates with the same id, or answers what the first request created", async () => {
      const idempotency = new Idempotency({ keys: keys(), clock, ttlMs: 600_000, waitMs: 50, claimTimeoutMs: 60_000 });
      // Records by id, as a table with a primary key: a second create of one id fails.
      const records = new Map<string, { id: string; by: string }>();
      const creating = (by: string, gate?: Promise<void>) => async (id: string) => {
        await gate;
        if (records.has(id)) throw new Error(`duplicate key ${id}`);
        const record = { id, by };
        records.set(id, record);
        return record;
      };
      const existing = async (record: { resource_id: string }) => records.get(record.resource_id)!;
      const recover = async (id: string) => records.get(id) ?? null;

      // The first request claims and never gets further (its process "crashed": its create waits forever).
      const key = `k-${crypto.randomUUID()}`;
      let resume!: () => void;
      const stuck = new Promise<void>((resolve) => (resume = resolve));
      const first = idempotency.once(withKey(key), "run", { a: 1 }, creating("first", stuck), existing, recover);
      await until(async () => ((await keys().get("run:anonymous", key, clock.nowMs())) !== null ? true : undefined), "the first claim");
      // Before the timeout a retry waits, then is told to come back (409).
      await expect(idempotency.once(withKey(key), "run", { a: 1 }, creating("early"), existing, recover)).rejects.toThrow(/still being processed/);
      clock.advance(60_000);
      const retry = await idempotency.once(withKey(key), "run", { a: 1 }, creating("retry"), existing, recover);
      expect(retry.by).toBe("retry");
      expect((await keys().get("run:anonymous", key, clock.nowMs()))?.response).toEqual(retry);
      // The first request was alive after all: its create of the same id fails, and it answers the retry's record.
      resume();
      expect(await first).toEqual(retry);
      expect(records.size).toBe(1);

      // A takeover that fails (a full queue) hands the claim back rather than freeing the key: the first request,
      // alive after all, still creates under the key's id, and the next retry answers that record.
      const key3 = `k-${crypto.randomUUID()}`;
      let resume3!: () => void;
      const stuck3 = new Promise<void>((resolve) => (resume3 = resolve));
      const slow = idempotency.once(withKey(key3), "run", { c: 1 }, creating("slow", stuck3), existing, recover);
      await until(async () => ((await keys().get("run:anonymous", key3, clock.nowMs())) !== null ? true : undefined), "the slow claim");
      clock.advance(60_000);
      const full = async () => {
        throw new Error("the queue is full");
      };
      await expect(idempotency.once(withKey(key3), "run", { c: 1 }, full, existing, recover)).rejects.toThrow(/queue is full/);
      expect((await keys().get("run:anonymous", key3, clock.nowMs()))?.claimed_at_ms).toBe(0);
      resume3();
      const made = await slow;
      expect(made.by).toBe("slow");
      expect(await idempotency.once(withKey(key3), "run", { c: 1 }, creating("next"), existing, recover)).toEqual(made);
      expect([...records.values()].filter((r) => r.by === "next")).toEqual([]);

      // A first request that created its record but died before answering: the retry answers that record.
      const key2 = `k-${crypto.randomUUID()}`;
      const claimedAt = clock.nowMs();
      expect((await keys().claim("run:anonymous", key2, { fingerprint: fingerprintOf({ b: 1 }), resource_id: "made" }, claimedAt, 600_000)).claimed).toBe(true);
      records.set("made", { id: "made", by: "dead" });
      clock.advance(60_000);
      expect(await idempotency.once(withKey(key2), "run", { b: 1 }, creating("never"), existing, recover)).toEqual({ id: "made", by: "dead" });
      expect((await keys().get("run:anonymous", key2, clock.nowMs()))?.response).toEqual({ id: "made", by: "dead" });
    });
  });
}
