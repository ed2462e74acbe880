/** What config.ts derives from the environment beyond the options themselves. */
import { describe, expect, it } from "vitest";
import { langsmithTracing, ProjectSchema } from "./config.ts";
import { storeSweepIntervalMs } from "./core/store-engine.ts";

describe("langsmithTracing (the /info flag)", () => {
  it("is on only with an API key and a tracing variable that says true, as LangChain traces", () => {
    expect(langsmithTracing({})).toBe(false);
    expect(langsmithTracing({ LANGSMITH_API_KEY: "k" })).toBe(false);
    expect(langsmithTracing({ LANGSMITH_TRACING: "true" })).toBe(false);
    expect(langsmithTracing({ LANGSMITH_API_KEY: "k", LANGSMITH_TRACING: "true" })).toBe(true);
    expect(langsmithTracing({ LANGCHAIN_API_KEY: "k", LANGCHAIN_TRACING_V2: "True" })).toBe(true);
    expect(langsmithTracing({ LANGSMITH_API_KEY: "k", LANGSMITH_TRACING: "false" })).toBe(false);
    expect(langsmithTracing({ LANGSMITH_API_KEY: "", LANGSMITH_TRACING: "true" })).toBe(false);
  });
});

describe("langgraph.json store.ttl", () => {
  const ttl = (value: Record<string, unknown>) => ProjectSchema.safeParse({ graphs: { agent: "./agent.ts:graph" }, store: { ttl: value } });

  it("bounds default_ttl at 100 years (52,560,000 minutes), as a put's own ttl: more would overflow the expiry column", () => {
    expect(ttl({ default_ttl: 52_560_000 }).success).toBe(true);
    const refused = ttl({ default_ttl: 1e15 });
    expect(refused.success).toBe(false);
    expect(refused.error?.issues[0]).toMatchObject({ path: ["store", "ttl", "default_ttl"] });
    expect(ttl({ default_ttl: 0 }).success).toBe(false);
  });

  it("turns sweep_interval_minutes into a timer delay a Node timer keeps (a longer one would fire at once, in a loop)", () => {
    expect(storeSweepIntervalMs(60)).toBe(3_600_000);
    expect(storeSweepIntervalMs(1e9)).toBe(2 ** 31 - 1);
    expect(storeSweepIntervalMs(Number.MAX_VALUE)).toBe(2 ** 31 - 1);
    expect(storeSweepIntervalMs(0.0001)).toBe(100);
  });
});
