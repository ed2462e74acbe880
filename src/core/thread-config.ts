/**
 * A thread remembers the config of the runs made on it, as the official
 * server does: a run executes with its own config over the thread's
 * `configurable` (so a run that sends none, such as a resume, keeps the
 * values an earlier run sent, copied request headers included), and the
 * thread keeps the merged config for the next run. Backends apply this in
 * the transaction that inserts the run.
 */
import type { RunnableConfigRecord } from "./types.ts";

/**
 * Keys that address one run's checkpoints: not remembered, or a run that
 * sends none would start again from the checkpoint an earlier run named.
 */
const PER_RUN_KEYS = ["checkpoint_id", "checkpoint_ns", "checkpoint_map", "thread_id", "run_id"];

export function mergeThreadConfig(thread: RunnableConfigRecord, run: RunnableConfigRecord): { run: RunnableConfigRecord; thread: RunnableConfigRecord } {
  const configurable = { ...thread.configurable, ...run.configurable };
  const remembered = Object.fromEntries(Object.entries(configurable).filter(([key]) => !PER_RUN_KEYS.includes(key)));
  return { run: { ...run, configurable }, thread: { ...thread, ...run, configurable: remembered } };
}
