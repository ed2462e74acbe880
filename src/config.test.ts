/** What config.ts derives from the environment beyond the options themselves. */
import { describe, expect, it } from "vitest";
import { langsmithTracing } from "./config.ts";

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
