/**
 * Idempotency keys on both backends (the IdempotencyKeys port) and the core
 * rule on top of them (src/core/idempotency.ts): a key is claimed once,
 * concurrent claims of one key have one winner, an expired key gives way,
 * a released key is free, keys of different callers never meet, and a
 * retry of a request still in flight waits for its answer.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPostgresBackend } from "../../src/backends/postgres/index.ts";
import { createSqliteBackend } from "../../src/backends/sqlite/index.ts";
import { SYSTEM_CONTEXT, type RequestContext } from "../../src/core/context.ts";
import { Idempotency } from "../../src/core/idempotency.ts";
import type { Backend } from "../../src/core/ports.ts";
import { ManualClock } from "../../src/testing/index.ts";
import { freshDatabase, type TestDatabase } from "../helpers/postgres.ts";

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
      for (const loser of losers) expect(loser).toEqual({ claimed: false, record: { fingerprint: "f", resource_id: first, response: null } });
      await keys().complete("run:anonymous", key, first, { run_id: first });
      expect(await keys().get("run:anonymous", key, clock.nowMs())).toEqual({ fingerprint: "f", resource_id: first, response: { run_id: first } });
    });

    it("lets an expired key and a released key be claimed again; purges expired keys", async () => {
      const key = `k-${crypto.randomUUID()}`;
      expect((await keys().claim("s", key, { fingerprint: "f", resource_id: "r1" }, clock.nowMs(), 1_000)).claimed).toBe(true);
      await keys().release("s", key, "r1");
      expect((await keys().claim("s", key, { fingerprint: "g", resource_id: "r2" }, clock.nowMs(), 1_000)).claimed).toBe(true);
      // A claim is completed and released by its own request only (one whose key expired and was taken over does neither).
      await keys().complete("s", key, "r1", { id: "r1" });
      await keys().release("s", key, "r1");
      expect(await keys().get("s", key, clock.nowMs())).toEqual({ fingerprint: "g", resource_id: "r2", response: null });
      await keys().complete("s", key, "r2", { id: "r2" });
      // A completed key is not released by a late failure report.
      await keys().release("s", key, "r2");
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
      const first = idempotency.once(withKey(key, "alice"), "run", { a: 1 }, create, existing);
      await running;
      const retries = Array.from({ length: 5 }, () => idempotency.once(withKey(key, "alice"), "run", { a: 1 }, create, existing));
      const other = await idempotency.once(withKey(key, "bob"), "run", { a: 1 }, async (id) => ({ id: `bob-${id}` }), existing);
      release();
      const answers = await Promise.all([first, ...retries]);
      expect(created).toBe(1);
      expect(new Set(answers.map((a) => a.id)).size).toBe(1);
      expect(other.id.startsWith("bob-")).toBe(true);
      await expect(idempotency.once(withKey(key, "alice"), "run", { a: 2 }, create, existing)).rejects.toThrow(/already used with a different request/);
      // The same key for a thread is another key.
      expect((await idempotency.once(withKey(key, "alice"), "thread", { a: 2 }, async (id) => ({ id }), existing)).id).not.toBe(answers[0].id);
    });
  });
}
