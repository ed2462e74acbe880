/**
 * Cron routes (docs/crons.md): create (stateless, or on a thread), search,
 * count, get, patch, delete, as the official API defines them.
 */
import { Hono } from "hono";
import type { NewCronInput } from "../../core/cron-service.ts";
import type { Cron, CronRunFields } from "../../core/crons.ts";
import type { JsonObject } from "../../core/types.ts";
import { ctxOf, type BatonEnv } from "../context.ts";
import type { HttpDeps } from "../deps.ts";
import * as s from "../schemas.ts";
import { body, uuidParam } from "../validate.ts";

/** A cron as the wire has it: `next_run_date` as an ISO time. */
export function wireCron(cron: Cron): Record<string, unknown> {
  const { next_run_ms, ...rest } = cron;
  return { ...rest, next_run_date: next_run_ms === null ? null : new Date(next_run_ms).toISOString() };
}

/** Keeps the fields a search selected (all when none). */
function selected(record: Record<string, unknown>, select: readonly string[] | undefined): Record<string, unknown> {
  if (select === undefined || select.length === 0) return record;
  return Object.fromEntries(select.map((field) => [field, record[field]]));
}

const RUN_FIELDS = [
  "input",
  "config",
  "context",
  "interrupt_before",
  "interrupt_after",
  "webhook",
  "multitask_strategy",
  "stream_mode",
  "stream_subgraphs",
  "stream_resumable",
  "durability",
  "checkpoint_during",
  "priority",
] as const;

/** The run fields a request body set (the cron's payload, or what a patch replaces in it). */
function payloadOf(input: s.CronCreate | s.CronPatch): CronRunFields & JsonObject {
  const payload: JsonObject = {};
  for (const field of RUN_FIELDS) {
    const value = (input as Record<string, unknown>)[field];
    if (value !== undefined) payload[field] = value;
  }
  return payload;
}

function createInput(input: s.CronCreate, threadId: string | null): NewCronInput {
  const payload = payloadOf(input);
  // Stateless crons run on a new thread each time: a multitask strategy has nothing to act on.
  if (threadId === null) delete payload.multitask_strategy;
  return {
    thread_id: threadId,
    assistant_id: input.assistant_id,
    schedule: input.schedule,
    timezone: input.timezone ?? null,
    end_time: input.end_time ?? null,
    enabled: input.enabled ?? true,
    on_run_completed: input.on_run_completed ?? undefined,
    metadata: input.metadata ?? {},
    payload,
  };
}

export function cronRoutes(deps: HttpDeps): Hono<BatonEnv> {
  const app = new Hono<BatonEnv>();
  const crons = deps.crons;

  app.post("/runs/crons", async (c) => c.json(wireCron(await crons.create(ctxOf(c), createInput(await body(c, s.CronCreate), null)))));

  app.post("/threads/:thread_id/runs/crons", async (c) => {
    const threadId = uuidParam(c, "thread_id");
    return c.json(wireCron(await crons.create(ctxOf(c), createInput(await body(c, s.CronCreate), threadId))));
  });

  app.post("/runs/crons/search", async (c) => {
    const { select, ...query } = await body(c, s.CronSearch);
    const found = await crons.search(ctxOf(c), query);
    return c.json(found.map((cron) => selected(wireCron(cron), select)));
  });

  app.post("/runs/crons/count", async (c) => c.json(await crons.count(ctxOf(c), await body(c, s.CronCount))));

  app.get("/runs/crons/:cron_id", async (c) => c.json(wireCron(await crons.get(ctxOf(c), uuidParam(c, "cron_id")))));

  app.patch("/runs/crons/:cron_id", async (c) => {
    const cronId = uuidParam(c, "cron_id");
    const input = await body(c, s.CronPatch);
    const payload = payloadOf(input);
    const updated = await crons.update(ctxOf(c), cronId, {
      schedule: input.schedule,
      timezone: input.timezone,
      end_time: input.end_time,
      enabled: input.enabled,
      on_run_completed: input.on_run_completed,
      metadata: input.metadata,
      payload: Object.keys(payload).length > 0 ? payload : undefined,
    });
    return c.json(wireCron(updated));
  });

  app.delete("/runs/crons/:cron_id", async (c) => {
    await crons.delete(ctxOf(c), uuidParam(c, "cron_id"));
    return c.json({});
  });

  return app;
}
