/**
 * The built-in API-key mode (BATON_API_KEYS) through the official SDK:
 * `new Client({ apiKey })` sends x-api-key; a bearer token works too; a
 * missing or wrong key is 401 and changes nothing; /ok stays open.
 */
import { Client } from "@langchain/langgraph-sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { human, startServer, type TestServer } from "../helpers/server.ts";

const ALICE = "alice-key-0123456789abcdef";
const BOB = "bob-key-fedcba9876543210";

let t: TestServer;
beforeAll(async () => {
  t = await startServer({ apiKeys: `alice:${ALICE},bob:${BOB}` });
});
afterAll(async () => {
  await t?.close();
});

describe("API keys", () => {
  it("lets the SDK in with its apiKey, and a bearer token too", async () => {
    const alice = new Client({ apiUrl: t.url, apiKey: ALICE });
    const thread = await alice.threads.create();
    const output = await alice.runs.wait(thread.thread_id, "echo", { input: human("hi") });
    expect((output as { messages: { content: string }[] }).messages.at(-1)?.content).toBe("echo: hi");
    const bearer = await fetch(`${t.url}/threads/${thread.thread_id}`, { headers: { authorization: `Bearer ${BOB}` } });
    // Every key sees the same data in this mode (no authorization handlers).
    expect(bearer.status).toBe(200);
  });

  it("answers 401 without a key or with a wrong one, and creates nothing", async () => {
    const before = await new Client({ apiUrl: t.url, apiKey: ALICE }).threads.count({});
    const missing = await fetch(`${t.url}/threads`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
    expect(missing.status).toBe(401);
    expect(missing.headers.get("www-authenticate")).toBe('Bearer realm="baton"');
    expect(await missing.json()).toEqual({ detail: expect.stringMatching(/^Missing API key/) });
    const wrong = await fetch(`${t.url}/threads`, { method: "POST", headers: { "content-type": "application/json", "x-api-key": `${ALICE}0` }, body: "{}" });
    expect(wrong.status).toBe(401);
    await expect(new Client({ apiUrl: t.url, apiKey: "not-a-key-at-all-00000" }).threads.create()).rejects.toThrow(/401/);
    expect(await new Client({ apiUrl: t.url, apiKey: ALICE }).threads.count({})).toBe(before);
    expect((await fetch(`${t.url}/ok`)).status).toBe(200);
  });
});
