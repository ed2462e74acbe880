/**
 * The example project the README's first command serves, through the SDK,
 * offline, sent what Agent Chat UI sends: human messages whose content is a
 * list of content blocks, and Approve/Reject as `{input: {}, command: {resume:
 * {decisions: [...]}}}` (its `submit({}, {command})`).
 */
import { join } from "node:path";
import type { Client } from "@langchain/langgraph-sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROOT } from "../helpers/process.ts";
import { human, startServer, type TestServer } from "../helpers/server.ts";

let t: TestServer;
beforeAll(async () => {
  t = await startServer({ configPath: join(ROOT, "examples/agent/langgraph.json") });
});
afterAll(async () => {
  await t.close();
});

type Msg = { type: string; content: unknown; name?: string; status?: string; tool_calls?: { name: string; args: unknown }[] };
type Values = { messages: Msg[]; __interrupt__?: { value: unknown }[] };

/** A human message as Agent Chat UI's composer sends it. */
const blocks = (text: string) => ({
  messages: [{ id: crypto.randomUUID(), type: "human", content: [{ type: "text", text }] }],
});

/**
 * Streams a run the way Agent Chat UI does (values mode) and returns the last
 * state streamed, with the interrupt when the run paused (LangGraph streams
 * that as a values event of its own, `{__interrupt__: [...]}`).
 */
async function streamValues(client: Client, threadId: string, payload: { input: Record<string, unknown>; command?: { resume: unknown } }): Promise<Values> {
  let last: Values = { messages: [] };
  for await (const part of client.runs.stream(threadId, "agent", { ...payload, streamMode: ["values"], streamResumable: true })) {
    if (part.event === "error") throw new Error(`run failed: ${JSON.stringify(part.data)}`);
    if (part.event === "values") last = { ...last, ...(part.data as Partial<Values>) };
  }
  return last;
}

describe("examples/agent", () => {
  it("the agent calls its calculator tool", async () => {
    const thread = await t.client.threads.create();
    const out = (await t.client.runs.wait(thread.thread_id, "agent", { input: human("what is 6*7") })) as Values;
    expect(out.messages.map((m) => m.type)).toEqual(["human", "ai", "tool", "ai"]);
    expect(out.messages[1]!.tool_calls?.[0]?.name).toBe("calculator");
    expect(out.messages.at(-1)!.content).toBe("The answer is 42.");
  });

  it("reads human text sent as content blocks", async () => {
    const thread = await t.client.threads.create();
    const out = await streamValues(t.client, thread.thread_id, { input: blocks("what is 6*7") });
    expect(out.messages.at(-1)!.content).toBe("The answer is 42.");
    const echo = await streamValues(t.client, thread.thread_id, { input: blocks("hello there") });
    expect(echo.messages.at(-1)!.content).toBe("You said: hello there");
  });

  it("asks for approval in the shape Agent Chat UI renders with Approve and Reject", async () => {
    const thread = await t.client.threads.create();
    const paused = await streamValues(t.client, thread.thread_id, { input: blocks("deploy to production") });
    // Agent Chat UI shows the request under the last message, the AI's tool call.
    expect(paused.messages.at(-1)).toMatchObject({ type: "ai", tool_calls: [{ name: "deploy", args: { target: "production" } }] });
    const request = {
      action_requests: [{ name: "deploy", args: { target: "production" }, description: expect.any(String) }],
      review_configs: [{ action_name: "deploy", allowed_decisions: ["approve", "reject"] }],
    };
    expect(paused.__interrupt__).toEqual([expect.objectContaining({ value: request })]);
    const state = await t.client.threads.getState(thread.thread_id);
    expect(state.next).toEqual(["approval"]);
    expect(state.tasks[0]!.interrupts).toEqual([expect.objectContaining({ value: request })]);
    expect((await t.client.threads.get(thread.thread_id)).status).toBe("interrupted");
  });

  it("Approve deploys", async () => {
    const thread = await t.client.threads.create();
    await streamValues(t.client, thread.thread_id, { input: blocks("deploy to production") });
    const out = await streamValues(t.client, thread.thread_id, { input: {}, command: { resume: { decisions: [{ type: "approve" }] } } });
    expect(out.messages.slice(-2)).toMatchObject([
      { type: "tool", name: "deploy", content: "Deployed to production." },
      { type: "ai", content: "Deployed to production." },
    ]);
    expect((await t.client.threads.get(thread.thread_id)).status).toBe("idle");
  });

  it("Reject, with the reason Agent Chat UI requires, does not deploy", async () => {
    const thread = await t.client.threads.create();
    await streamValues(t.client, thread.thread_id, { input: blocks("deploy to staging") });
    const decisions = [{ type: "reject", message: "not on a Friday" }];
    const out = await streamValues(t.client, thread.thread_id, { input: {}, command: { resume: { decisions } } });
    expect(out.messages.slice(-2)).toMatchObject([
      { type: "tool", name: "deploy", status: "error", content: "not on a Friday" },
      { type: "ai", content: "Not deployed: not on a Friday" },
    ]);
  });

  it("a resume in another shape fails the run with a message saying what to send", async () => {
    const thread = await t.client.threads.create();
    await t.client.runs.wait(thread.thread_id, "agent", { input: human("deploy") });
    const run = await t.client.runs.create(thread.thread_id, "agent", { command: { resume: { approved: true } } });
    await t.client.runs.join(thread.thread_id, run.run_id);
    const final = await t.client.runs.get(thread.thread_id, run.run_id);
    expect(final.status).toBe("error");
    const state = await t.client.threads.getState(thread.thread_id);
    expect(JSON.stringify(state.tasks[0]?.error ?? "")).toMatch(/decisions/);
  });

  // Skipped where OPENAI_API_KEY is set: the graph then talks to the real
  // model, which this offline suite must not call.
  it.skipIf(Boolean(process.env.OPENAI_API_KEY))("the chat graph streams tokens from the offline stand-in model", async () => {
    const thread = await t.client.threads.create();
    const tokens: string[] = [];
    for await (const part of t.client.runs.stream(thread.thread_id, "chat", { input: human("hello"), streamMode: "messages-tuple" })) {
      if (part.event === "messages") tokens.push((part.data as [{ content: string }, unknown])[0].content);
    }
    expect(tokens.length).toBeGreaterThan(10);
    expect(tokens.join("")).toMatch(/^This answer comes from a local stand-in model/);
  });
});
