/**
 * Graph schemas as the official server serves them (issue #10 item 19):
 * typed from TypeScript annotations, literal unions as enums, subgraphs with
 * their own schemas, zod state from the running graph. The expected answers
 * were recorded from the published dev server (`langgraphjs dev` 1.5.1) on
 * the same fixture project (test/fixtures/schemas), one per request below.
 */
import { readFileSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EXECUTION_THREADS, SCALE_OUT, startServer, type TestServer } from "../helpers/server.ts";

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

  it("extracts an annotated graph's schemas off the event loop, then answers the same again", async () => {
    // The first request runs the TypeScript compiler (seconds); the server keeps answering meanwhile.
    const order: string[] = [];
    const first = t.client.assistants.getSchemas("annotated").then((s) => (order.push("schemas"), s));
    await t.client.assistants.search({ graphId: "annotated" }).then(() => order.push("search"));
    expect(await first).toEqual(official["annotated.schemas"]);
    expect(order).toEqual(["search", "schemas"]);
    expect(await t.client.assistants.getSchemas("annotated")).toEqual(official["annotated.schemas"]);
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
    // Each graph is compiled on its own, on its first schema request.
  }, 120_000);

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
  }, 120_000);

  it("answers for an assistant of the graph as for the graph", async () => {
    const assistant = await t.client.assistants.create({ graphId: "annotated" });
    const schemas = await t.client.assistants.getSchemas(assistant.assistant_id);
    expect(schemas).toEqual(official["annotated.schemas"]);
  });
});

/** The compiler's work does not depend on the backend: run once, in the embedded project. */
describe.skipIf(SCALE_OUT || EXECUTION_THREADS === 0)("graph schemas without types", () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startServer({ configPath: join(DIR, "untyped/langgraph.json") });
  });
  afterAll(async () => t.close());

  it("names a JavaScript graph's channels, untyped, where the dev server answers 500", async () => {
    const schemas = await t.client.assistants.getSchemas("plain");
    const channels = { type: "object", properties: { topic: {}, notes: {} } };
    expect(schemas).toEqual({
      graph_id: "plain",
      input_schema: channels,
      output_schema: channels,
      state_schema: channels,
      config_schema: { type: "object", properties: {} },
      context_schema: { type: "object", properties: {} },
    });
  }, 120_000);
});

/**
 * Generative UI (issue #10 item 20): the `ui` key's components, bundled at
 * start, served as the dev server serves them to the SDK's
 * `LoadExternalComponent` (its UiClient, `client["~ui"]`, posts to /ui/{agent}).
 */
describe("generative UI, as the dev server serves it", () => {
  const UI = join(import.meta.dirname, "../fixtures/ui");
  let t: TestServer;
  beforeAll(async () => {
    // A reverse proxy's public name is among the hosts this server answers.
    t = await startServer({ configPath: join(UI, "langgraph.json"), allowedHosts: "agents.example.com" });
  });
  afterAll(async () => t.close());

  const host = () => new URL(t.url).host;
  const post = (agent: string, body: unknown) =>
    fetch(`${t.url}/ui/${agent}`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });

  it("answers the snippet LoadExternalComponent inserts, with the shadow root placeholder", async () => {
    const html = await t.client["~ui"].getComponent("agent", "card");
    expect(html).toBe(
      [
        `<link rel="stylesheet" href="http://${host()}/ui/agent/entrypoint.css" />`,
        `<script src="http://${host()}/ui/agent/entrypoint.js" onload='__LGUI_agent.render("card", "{{shadowRootId}}")'></script>`,
      ].join("\n"),
    );
    const response = await post("agent", { name: "card" });
    expect(response.headers.get("content-type")).toBe("text/plain; charset=UTF-8");
  });

  it("names the bundle's global after the agent, and links no stylesheet when there is none", async () => {
    const response = await post("weather-agent", { name: "forecast" });
    expect(await response.text()).toBe(
      `<script src="http://${host()}/ui/weather-agent/entrypoint.js" onload='__LGUI_weather_agent.render("forecast", "{{shadowRootId}}")'></script>`,
    );
  });

  it("makes URLs protocol-relative for a Host other than localhost or 127.0.0.1", async () => {
    // fetch() cannot set Host: a plain HTTP request, as a reverse proxy would send it.
    const html = await new Promise<string>((resolve, reject) => {
      const request = httpRequest(`${t.url}/ui/agent`, { method: "POST", headers: { Host: "agents.example.com:8443", "Content-Type": "application/json" } }, (response) => {
        response.setEncoding("utf8");
        let text = "";
        response.on("data", (chunk: string) => (text += chunk));
        response.on("end", () => resolve(text));
      });
      request.on("error", reject);
      request.end(JSON.stringify({ name: "card" }));
    });
    expect(html).toContain(`<link rel="stylesheet" href="//agents.example.com:8443/ui/agent/entrypoint.css" />`);
    expect(html).toContain(`<script src="//agents.example.com:8443/ui/agent/entrypoint.js"`);
  });

  it("serves the bundled JavaScript and CSS with their content types", async () => {
    const js = await fetch(`${t.url}/ui/agent/entrypoint.js`);
    expect(js.status).toBe(200);
    expect(js.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
    const code = await js.text();
    expect(code).toContain("var __LGUI_agent");
    expect(code).toContain("Weather in ");
    // React stays outside the bundle: the page provides it (LGUI_REQUIRE).
    expect(code).toContain(`Symbol.for("LGUI_REQUIRE")`);
    const css = await fetch(`${t.url}/ui/agent/entrypoint.css`);
    expect(css.headers.get("content-type")).toBe("text/css; charset=utf-8");
    expect(await css.text()).toContain(".card {");
  });

  it("answers 404 for an agent without a UI and for a file not in the bundle", async () => {
    await expect(t.client["~ui"].getComponent("nope", "card")).rejects.toThrow(/404/);
    const unknown = await post("nope", { name: "card" });
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toEqual({ detail: "UI of agent 'nope' not found." });
    expect((await fetch(`${t.url}/ui/agent/missing.js`)).status).toBe(404);
    expect((await fetch(`${t.url}/ui/nope/entrypoint.js`)).status).toBe(404);
  });

  it("refuses a request without a component name with 422, naming the field", async () => {
    const response = await post("agent", {});
    expect(response.status).toBe(422);
    expect(((await response.json()) as { detail: string }).detail).toMatch(/name/);
  });

  it("keeps a component name inside the onload attribute", async () => {
    const html = await (await post("agent", { name: "it's & more" })).text();
    expect(html).toContain(`onload='__LGUI_agent.render("it&#39;s &amp; more", "{{shadowRootId}}")'`);
  });

  it("fails start-up when a component does not bundle, naming its file", async () => {
    await expect(startServer({ configPath: join(UI, "broken/langgraph.json") })).rejects.toThrow(/UI 'agent' \(.*broken\.jsx.*failed to bundle: .*missing-component/s);
  });
});
