/**
 * What a thread stream (`GET /threads/{thread_id}/stream`) sends: the events
 * of every run of the thread, from the thread's log in the event bus, with
 * each run's lifecycle, filtered by the modes the client asked for.
 *
 * Lifecycle (where the official API names the modes but not the events):
 * a run's start is its own first event, `metadata` with `run_id` and
 * `attempt` (again for each attempt after a crash); its end is a `metadata`
 * event `{run_id, status: "run_done", run_status}` with the run's final
 * status (`success`, `error`, `interrupted`, `timeout`, `rolled_back`),
 * also for a run that ended without a worker finishing it (cancelled while
 * pending, timed out in the queue, abandoned by the sweeper).
 */
import type { RunEvent, ThreadEvent } from "./types.ts";

/** The official thread stream modes: `run_modes` every event of every run (the default), `lifecycle` starts and ends, `state_update` the state after each step. */
export const THREAD_STREAM_MODES = ["run_modes", "lifecycle", "state_update"] as const;
export type ThreadStreamMode = (typeof THREAD_STREAM_MODES)[number];

/** Events a `state_update` reader gets: the state after each step, and each step's update (subgraphs' too). */
const STATE_EVENTS = new Set(["values", "updates"]);

/** The event a thread stream sends for one entry of the thread's log; undefined for an entry it does not send. */
export function threadStreamEvent(entry: ThreadEvent): RunEvent | undefined {
  if (entry.event === "__final__") {
    const status = (entry.data as { status?: unknown } | null)?.status;
    return { id: entry.id, event: "metadata", data: { run_id: entry.run_id, status: "run_done", run_status: status } };
  }
  if (entry.event.startsWith("__")) return undefined;
  return { id: entry.id, event: entry.event, data: entry.data };
}

/** Whether a reader that asked for `modes` gets `event` (a thread stream's event, see threadStreamEvent). */
export function threadModeFilter(modes: readonly ThreadStreamMode[]): (event: RunEvent) => boolean {
  const wanted = new Set(modes.length === 0 ? ["run_modes"] : modes);
  if (wanted.has("run_modes")) return () => true;
  return (event) => {
    const base = event.event.split("|")[0]!;
    // A notice that events are missing reaches every reader.
    if (base === "error" && (event.data as { error?: unknown } | null)?.error === "StreamTruncated") return true;
    if (base === "metadata") return wanted.has("lifecycle");
    return wanted.has("state_update") && STATE_EVENTS.has(base);
  };
}
