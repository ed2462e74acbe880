/** The example project the README's first command serves, through the SDK, offline. */
import { join } from "node:path";
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

type Msg = { type: string; content: string; tool_calls?: { name: string }[] };

describe("examples/agent", () => {
  it("the agent calls its calculator tool", async () => {
    const thread = await t.client.threads.create();
    const out = (await t.client.runs.wait(thread.thread_id, "agent", { input: human("what is 6*7") })) as { messages: Msg[] };
    expect(out.messages.map((m) => m.type)).toEqual(["human", "ai", "tool", "ai"]);
    expect(out.messages[1]!.tool_calls?.[0]?.name).toBe("calculator");
    expect(out.messages.at(-1)!.content).toBe("The answer is 42.");
  });

  it("the agent asks a human before deploying, and resumes with the answer", async () => {
    const thread = await t.client.threads.create();
    await t.client.runs.wait(thread.thread_id, "agent", { input: human("deploy to production") });
    const state = await t.client.threads.getState(thread.thread_id);
    expect(state.next).toEqual(["approval"]);
    const out = (await t.client.runs.wait(thread.thread_id, "agent", { command: { resume: { approved: false } } })) as { messages: Msg[] };
    expect(out.messages.at(-1)!.content).toBe("Not approved: nothing was deployed.");
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
