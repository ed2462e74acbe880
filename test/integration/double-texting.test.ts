/**
 * C1, C2, C4 under fire: bursts of concurrent requests on one thread for each
 * multitask strategy, auditing every answer and the final state.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { human, startGatedRun, startServer, type TestServer } from "../helpers/server.ts";

let t: TestServer;
beforeAll(async () => {
  t = await startServer({ workers: 8 });
});
afterAll(async () => {
  await t.close();
});

type Msg = { type: string; content: string };
type Outcome = { kind: "ok"; text: string; messages: Msg[] } | { kind: "rejected" } | { kind: "stopped"; how: string };

async function burst(strategy: "reject" | "enqueue" | "interrupt" | "rollback", n: number) {
  const thread = await t.client.threads.create();
  const texts = Array.from({ length: n }, (_, i) => `${strategy}-${n}-${i}`);
  const outcomes = await Promise.all(
    texts.map(async (text): Promise<Outcome> => {
      try {
        const out = (await t.client.runs.wait(thread.thread_id, "echo", { input: human(text), multitaskStrategy: strategy })) as { messages: Msg[] };
        return { kind: "ok", text, messages: out.messages };
      } catch (error) {
        const message = (error as Error).message;
        if (/HTTP 409/.test(message)) return { kind: "rejected" };
        if (/RunInterrupted|RunRolledBack/.test(message)) return { kind: "stopped", how: message };
        throw error;
      }
    }),
  );
  // Every answer is the run's own: its own message last among humans, echoed last.
  for (const outcome of outcomes) {
    if (outcome.kind !== "ok") continue;
    expect(outcome.messages.length).toBeGreaterThan(0);
    const humans = outcome.messages.filter((m) => m.type === "human");
    expect(humans.at(-1)!.content).toBe(outcome.text);
    expect(outcome.messages.at(-1)).toMatchObject({ type: "ai", content: `echo: ${outcome.text}` });
  }
  const runs = await t.client.runs.list(thread.thread_id, { limit: 1000 });
  expect(runs.every((r) => r.status !== "pending" && r.status !== "running")).toBe(true);
  const final = (await t.client.threads.getState(thread.thread_id)).values as { messages?: Msg[] };
  const contents = (final.messages ?? []).map((m) => m.content);
  // Nothing duplicated.
  expect(new Set(contents).size).toBe(contents.length);
  expect((await t.client.threads.get(thread.thread_id)).status).toBe("idle");
  return { outcomes, contents, runs, texts };
}

describe.each([10, 50, 200])("%i concurrent requests on one thread", (n) => {
  it("enqueue: every message answered by its own run, each exactly once in the final state", async () => {
    const { outcomes, contents, texts } = await burst("enqueue", n);
    expect(outcomes.every((o) => o.kind === "ok")).toBe(true);
    expect(contents.filter((c) => !c.startsWith("echo: ")).sort()).toEqual([...texts].sort());
    expect(contents.filter((c) => c.startsWith("echo: "))).toHaveLength(n);
    // The queued runs of one thread run one after another: 200 of them take
    // about 18 s on Postgres on two cores, and up to 24 s while other test
    // files run, within the 60 s every test has (vitest.config.ts).
  });

  it("reject: the losers get 409, the winners' messages are in the state once", async () => {
    const { outcomes, contents } = await burst("reject", n);
    const ok = outcomes.filter((o) => o.kind === "ok");
    expect(ok.length).toBeGreaterThanOrEqual(1);
    expect(ok.length + outcomes.filter((o) => o.kind === "rejected").length).toBe(n);
    expect(contents.filter((c) => !c.startsWith("echo: ")).sort()).toEqual(ok.map((o) => o.text).sort());
  });

  it("interrupt: superseded runs say so; kept progress is never duplicated", async () => {
    const { outcomes, contents, runs } = await burst("interrupt", n);
    expect(outcomes.some((o) => o.kind === "ok")).toBe(true);
    for (const o of outcomes) if (o.kind === "stopped") expect(o.how).toMatch(/RunInterrupted/);
    // Every run that succeeded has its message and echo in the final state.
    for (const o of outcomes) if (o.kind === "ok") expect(contents).toContain(`echo: ${o.text}`);
    expect(runs.filter((r) => r.status === "interrupted").length).toBe(outcomes.filter((o) => o.kind === "stopped").length);
  });

  it("rollback: superseded runs say so and leave no trace in the state", async () => {
    const { outcomes, contents, runs } = await burst("rollback", n);
    const ok = outcomes.filter((o): o is Extract<Outcome, { kind: "ok" }> => o.kind === "ok");
    expect(ok.length).toBeGreaterThanOrEqual(1);
    for (const o of outcomes) if (o.kind === "stopped") expect(o.how).toMatch(/RunRolledBack/);
    expect(contents.filter((c) => !c.startsWith("echo: ")).sort()).toEqual(ok.map((o) => o.text).sort());
    expect(runs).toHaveLength(ok.length);
  });
});

describe("strategies against a run that is running", () => {
  it("interrupt stops the running run, keeps its progress and marks it interrupted", async () => {
    const { thread, run: first, message } = await startGatedRun(t.client);
    expect((await t.client.runs.get(thread.thread_id, first.run_id)).status).toBe("running");
    const second = (await t.client.runs.wait(thread.thread_id, "echo", { input: human("newer"), multitaskStrategy: "interrupt" })) as { messages: Msg[] };
    expect(second.messages.map((m) => m.content)).toEqual([message, "newer", "echo: newer"]);
    expect((await t.client.runs.get(thread.thread_id, first.run_id)).status).toBe("interrupted");
    await expect(t.client.runs.join(thread.thread_id, first.run_id)).resolves.toMatchObject({ __error__: { error: "RunInterrupted" } });
  });

  it("rollback deletes the running run and its checkpoints before the new one starts", async () => {
    const { thread, run: first } = await startGatedRun(t.client);
    const second = (await t.client.runs.wait(thread.thread_id, "echo", { input: human("clean"), multitaskStrategy: "rollback" })) as { messages: Msg[] };
    expect(second.messages.map((m) => m.content)).toEqual(["clean", "echo: clean"]);
    await expect(t.client.runs.get(thread.thread_id, first.run_id)).rejects.toThrow(/404/);
    const history = await t.client.threads.getHistory(thread.thread_id, { limit: 100 });
    expect(history.every((h) => (h.metadata as { run_id?: string }).run_id !== first.run_id)).toBe(true);
  });

  it("a state update is refused with 409 while a run runs, and works once it ended", async () => {
    const { thread, run, gate: g } = await startGatedRun(t.client);
    await expect(t.client.threads.updateState(thread.thread_id, { values: human("sneaky"), asNode: "reply" })).rejects.toThrow(
      new RegExp(`409.*busy with run ${run.run_id}`),
    );
    g.open();
    await t.client.runs.join(thread.thread_id, run.run_id);
    await t.client.threads.updateState(thread.thread_id, { values: human("later"), asNode: "reply" });
    const state = (await t.client.threads.getState(thread.thread_id)).values as { messages: Msg[] };
    expect(state.messages.map((m) => m.content)).toEqual([expect.stringMatching(/^gate:/), expect.stringMatching(/^echo: gate:/), "later"]);
  });

  it("reject answers 409 naming the busy run, with Retry-After", async () => {
    const { thread, run: first, gate: g } = await startGatedRun(t.client);
    const response = await fetch(`${t.url}/threads/${thread.thread_id}/runs`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ assistant_id: "echo", input: human("no"), multitask_strategy: "reject" }),
    });
    expect(response.status).toBe(409);
    expect(response.headers.get("Retry-After")).toBe("1");
    expect(((await response.json()) as { detail: string }).detail).toContain(first.run_id);
    g.open();
    await t.client.runs.join(thread.thread_id, first.run_id);
    expect((await t.client.runs.list(thread.thread_id)).map((r) => r.run_id)).toEqual([first.run_id]);
  });
});
