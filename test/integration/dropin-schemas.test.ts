/**
 * Graph schemas as the official server serves them (issue #10 item 19):
 * typed from TypeScript annotations, literal unions as enums, subgraphs with
 * their own schemas, zod state from the running graph. The expected answers
 * were recorded from the published dev server (`langgraphjs dev` 1.5.1) on
 * the same fixture project (test/fixtures/schemas), one per request below.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startServer, type TestServer } from "../helpers/server.ts";

const DIR = join(import.meta.dirname, "../fixtures/schemas");
const official = JSON.parse(readFileSync(join(DIR, "expected/dev-server.json"), "utf8")) as Record<string, unknown>;

describe("graph schemas, as the dev server serves them", () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startServer({ configPath: join(DIR, "langgraph.json") });
  });
  afterAll(async () => t.close());

  const get = async (path: string) => {
    const response = await fetch(`${t.url}${path}`);
    expect(response.status).toBe(200);
    return response.json();
  };

  it("extracts an annotated graph's schemas off the event loop, then answers from the cache", async () => {
    // The first request runs the TypeScript compiler (seconds); the server keeps answering meanwhile.
    const order: string[] = [];
    const first = t.client.assistants.getSchemas("annotated").then((s) => (order.push("schemas"), s));
    await t.client.assistants.search({ graphId: "annotated" }).then(() => order.push("search"));
    expect(await first).toEqual(official["annotated.schemas"]);
    expect(order).toEqual(["search", "schemas"]);
    const started = Date.now();
    expect(await t.client.assistants.getSchemas("annotated")).toEqual(official["annotated.schemas"]);
    expect(Date.now() - started).toBeLessThan(1_000);
  }, 120_000);

  it("types literal unions as enums and optional fields as plain types", async () => {
    const schemas = await t.client.assistants.getSchemas("annotated");
    const props = (schemas.state_schema as { properties: Record<string, unknown> }).properties;
    expect(props.mood).toEqual({ enum: ["happy", "neutral", "sad"], type: "string" });
    expect(props.tags).toEqual({ type: "array", items: { type: "string" } });
    expect(props.count).toEqual({ type: "number" });
    expect(props.note).toEqual({ type: "string" });
  });

  it("serves a config schema typed with annotations, as the context schema too", async () => {
    expect(await get("/assistants/configured/schemas")).toEqual(official["configured.schemas"]);
  });

  it("serves a zod-state graph's schemas from the running graph", async () => {
    expect(await get("/assistants/zod_state/schemas")).toEqual(official["zod_state.schemas"]);
  });

  it("serves a graph with subgraphs, and each subgraph's own schemas", async () => {
    expect(await get("/assistants/parent/schemas")).toEqual(official["parent.schemas"]);
    expect(await t.client.assistants.getSubgraphs("parent")).toEqual(official["parent.subgraphs"]);
    expect(await t.client.assistants.getSubgraphs("parent", { recurse: true })).toEqual(official["parent.subgraphs-recurse"]);
    expect(await t.client.assistants.getSubgraphs("parent", { namespace: "child" })).toEqual(official["parent.ns-child"]);
    expect(await get("/assistants/parent/subgraphs/child?recurse=true")).toEqual(official["parent.ns-child-recurse"]);
    for (const graph of ["annotated", "zod_state", "configured"]) {
      expect(await get(`/assistants/${graph}/subgraphs`)).toEqual(official[`${graph}.subgraphs`]);
      expect(await get(`/assistants/${graph}/subgraphs?recurse=true`)).toEqual(official[`${graph}.subgraphs-recurse`]);
    }
  });

  it("answers for an assistant of the graph as for the graph", async () => {
    const assistant = await t.client.assistants.create({ graphId: "annotated" });
    const schemas = await t.client.assistants.getSchemas(assistant.assistant_id);
    expect(schemas).toEqual(official["annotated.schemas"]);
  });
});
