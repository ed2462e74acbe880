/**
 * Whose run it is (issue 16, item 4): RunService decides the owner once,
 * for every backend: the authenticated caller when there is one (a client's
 * metadata.owner cannot move its runs onto someone else's quota), else the
 * run's metadata.owner, else its thread's, else nobody. The queue stores
 * what it is given (src/testing/queue-suite.ts).
 */
import { dirname } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { MemoryEventBus } from "../../src/backends/memory/event-bus.ts";
import { createSqliteBackend, type SqliteBackend } from "../../src/backends/sqlite/index.ts";
import { systemAssistantId } from "../../src/core/assistants.ts";
import { NoAuthorizer } from "../../src/core/authorizer.ts";
import { SYSTEM_CONTEXT, type RequestContext } from "../../src/core/context.ts";
import { GraphRegistry } from "../../src/core/graphs.ts";
import { Idempotency } from "../../src/core/idempotency.ts";
import { RunService, type CreateRunInput } from "../../src/core/runs.ts";
import { ManualClock, newRun } from "../../src/testing/index.ts";
import { FIXTURES } from "../helpers/server.ts";

let backend: SqliteBackend;
let bus: MemoryEventBus;
let service: RunService;

beforeEach(async () => {
  const clock = new ManualClock();
  backend = createSqliteBackend({ path: ":memory:", busyTimeoutMs: 0, clock });
  bus = new MemoryEventBus();
  const registry = new GraphRegistry([{ graphId: "echo", spec: "./graphs.ts:echo" }], dirname(FIXTURES));
  await registry.loadAll();
  await backend.assistants.ensure({ assistant_id: systemAssistantId("echo"), graph_id: "echo", config: {}, context: {}, metadata: {}, name: "echo", description: null });
  service = new RunService({
    queue: backend.runs,
    assistants: backend.assistants,
    threads: backend.threads,
    threadService: { requireCheckpoint: () => Promise.resolve() },
    bus,
    registry,
    clock,
    limits: { maxPendingPerUser: 1_000, maxPendingRuns: 1_000 },
    authorizer: new NoAuthorizer(),
    idempotency: new Idempotency({ keys: backend.idempotency, clock, ttlMs: 60_000 }),
  });
});

afterEach(async () => {
  await bus.close();
  await backend.close();
});

const request = (threadId: string | null, metadata: Record<string, unknown> = {}): CreateRunInput => ({
  thread_id: threadId,
  assistant_id: "echo",
  kwargs: newRun("unused", "unused").kwargs,
  metadata,
  multitask_strategy: "enqueue",
  if_not_exists: "create",
  after_seconds: 0,
});

const as = (identity: string, authenticated = true): RequestContext => ({
  ...SYSTEM_CONTEXT,
  principal: { identity, display_name: identity, is_authenticated: authenticated, permissions: [] },
});

describe("the owner of a run", () => {
  it("is the authenticated caller, whatever the run's or the thread's metadata says", async () => {
    await backend.threads.create({ thread_id: "t1", metadata: { owner: "carol" }, if_exists: "raise" });
    const run = await service.create(as("alice"), request("t1", { owner: "mallory" }));
    expect(run.owner).toBe("alice");
    expect(run.metadata).toEqual({ owner: "mallory" });
  });

  it("without a caller: the run's metadata.owner, else the thread's, else nobody", async () => {
    await backend.threads.create({ thread_id: "t2", metadata: { owner: "carol" }, if_exists: "raise" });
    expect((await service.create(SYSTEM_CONTEXT, request("t2", { owner: "dave" }))).owner).toBe("dave");
    expect((await service.create(SYSTEM_CONTEXT, request("t2"))).owner).toBe("carol");
    // A caller the authenticator named, even as not authenticated (a guest session), owns its runs.
    expect((await service.create(as("guest-1", false), request("t2", { owner: "carol" }))).owner).toBe("guest-1");
    expect((await service.create(SYSTEM_CONTEXT, request("t3"))).owner).toBeNull();
    expect((await service.create(SYSTEM_CONTEXT, request(null, { owner: "erin" }))).owner).toBe("erin");
  });

  it("a thread the run creates takes the run's metadata, with the graph and assistant", async () => {
    await service.create(SYSTEM_CONTEXT, request("t4", { topic: "x" }));
    expect((await backend.threads.get("t4"))?.metadata).toEqual({ graph_id: "echo", assistant_id: systemAssistantId("echo"), topic: "x" });
  });
});
