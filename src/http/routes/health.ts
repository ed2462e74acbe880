/**
 * Readiness (`GET /ready`): whether this process should get traffic now.
 * Liveness is `/ok` (meta.ts): it answers as long as the process serves
 * HTTP, so an orchestrator restarts a process only when it is wedged, and
 * stops routing to it (without killing it) while a dependency is away or
 * while it drains.
 */
import { Hono } from "hono";
import type { SchemaStatus } from "../../core/ports.ts";

/** What `/ready` answers: `ok` with each check's result, and when not ok a `detail` naming what failed. */
export interface Readiness {
  ok: boolean;
  /** Each check by name: "ok", or what failed. */
  checks: Record<string, string>;
  detail?: string;
}

/** The checks a process makes, wired by the composition root from its backend and bus. */
export interface ReadinessSources {
  /** The backend's schema status (one cheap statement: it proves the database answers too). */
  schema: () => Promise<SchemaStatus>;
  /** Whether the event bus reaches every subscriber; absent when there is no Redis to check. */
  bus?: (() => boolean) | undefined;
  /** True from the moment the process was told to stop (SIGTERM). */
  draining: () => boolean;
  /** How long the database check may take before it counts as failed. */
  timeoutMs: number;
  /** Told what the driver said when the database check fails (once per distinct message): the probe's answer, open to anyone, leaves it out. */
  log?: ((message: string) => void) | undefined;
}

/** What the driver said (the cause a retryable "unavailable" error keeps), on one line: for operators, not clients. */
function driverMessage(error: unknown): string {
  const cause = error instanceof Error && error.cause instanceof Error ? error.cause : error;
  return (cause instanceof Error ? cause.message : String(cause)).replace(/\s+/g, " ");
}

/** The database check: its answer, or the reason it failed (a timeout included). */
async function databaseCheck(schema: ReadinessSources["schema"], timeoutMs: number, log: (message: string) => void): Promise<string> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<string>((resolve) => {
    timer = setTimeout(() => resolve(`the database did not answer within ${timeoutMs} ms`), timeoutMs);
  });
  const answer = schema().then(
    ({ version, expected }) =>
      version === expected
        ? "ok"
        : version < expected
          ? `the schema is at version ${version}, this Baton needs ${expected}: run 'baton migrate'`
          : `the schema is at version ${version}, newer than this Baton (${expected}): upgrade Baton`,
    (error: unknown) => {
      log(driverMessage(error));
      return "the database does not answer (the process's log says why: ready:database-failed)";
    },
  );
  try {
    return await Promise.race([answer, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Runs every check (the database's concurrently with the rest) and says which failed. */
export function readinessCheck(sources: ReadinessSources): () => Promise<Readiness> {
  let lastLogged: string | undefined;
  const log = (message: string) => {
    if (message !== lastLogged) sources.log?.(message);
    lastLogged = message;
  };
  return async () => {
    // A stopping process is unready whatever its dependencies say (and they are about to close).
    if (sources.draining()) {
      const detail = "draining: the process is shutting down; it finishes its runs, then exits";
      return { ok: false, checks: { draining: detail }, detail };
    }
    const checks: Record<string, string> = {};
    checks.database = await databaseCheck(sources.schema, sources.timeoutMs, log);
    if (checks.database === "ok") lastLogged = undefined;
    if (sources.bus !== undefined) checks.redis = sources.bus() ? "ok" : "Redis is not connected (or reconnected less than a few seconds ago)";
    const failed = Object.entries(checks).filter(([, result]) => result !== "ok");
    if (failed.length === 0) return { ok: true, checks };
    return { ok: false, checks, detail: failed.map(([, result]) => result).join("; ") };
  };
}

/** `GET /ready`: 200 with the checks when ready, else 503 with a `detail` naming what failed. Never authenticated. */
export function healthRoutes(ready: () => Promise<Readiness>): Hono {
  const app = new Hono();
  app.get("/ready", async (c) => {
    const readiness = await ready();
    return c.json(readiness, readiness.ok ? 200 : 503);
  });
  return app;
}
