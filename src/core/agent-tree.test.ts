/**
 * agent.getTree's tree (src/core/protocol.ts `agentTree`) from a run's
 * entries in the thread log: subgraphs by namespace, each ended as its
 * task's result in the parent namespace says.
 */
import { describe, expect, it } from "vitest";
import { agentTree, atOrAfter } from "./protocol.ts";
import type { ThreadEvent } from "./types.ts";

let n = 0;
const entry = (event: string, data: unknown): ThreadEvent => ({ id: `1700000000000-${n++}`, run_id: "r", event, data });

describe("agentTree", () => {
  it("nests namespaces, and takes each subgraph's status from its task's end in the parent namespace", () => {
    const entries = [
      entry("metadata", { run_id: "r" }),
      entry("values|a:1", { x: 1 }),
      entry("updates|a:1|deep:9", { node: {} }),
      entry("values|b:2", { y: 1 }),
      entry("values|c:3", { z: 1 }),
      entry("tasks", { id: "1", name: "a", result: {}, error: null, interrupts: [] }),
      entry("tasks", { id: "2", name: "b", result: null, error: "boom", interrupts: [] }),
      entry("tasks", { id: "3", name: "c", result: null, error: null, interrupts: [{ value: "?" }] }),
    ];
    const tree = agentTree("agent", "running", entries);
    expect(tree).toEqual({
      namespace: [],
      status: "running",
      graph_name: "agent",
      children: [
        { namespace: ["a:1"], status: "completed", graph_name: "a", children: [{ namespace: ["a:1", "deep:9"], status: "started", graph_name: "deep" }] },
        { namespace: ["b:2"], status: "failed", graph_name: "b" },
        { namespace: ["c:3"], status: "interrupted", graph_name: "c" },
      ],
    });
  });

  it("takes the root's end from the run's final entry, else from its status; an ended root ends what did not say", () => {
    expect(agentTree("g", "pending", []).status).toBe("running");
    expect(agentTree("g", "error", [entry("values|s:1", {})])).toMatchObject({ status: "failed", children: [{ status: "failed" }] });
    const interrupted = agentTree("g", "success", [entry("values|s:1", {}), entry("values|t:2", {}), entry("tasks", { id: "2", name: "t", result: {} }), entry("__final__", { status: "success", output: { __interrupt__: [{ id: "i" }] } })]);
    expect(interrupted).toMatchObject({ status: "interrupted", children: [{ status: "interrupted" }, { status: "completed" }] });
    const completed = agentTree("g", "success", [entry("values|s:1", {}), entry("__final__", { status: "success", output: {} })]);
    expect(completed).toMatchObject({ status: "completed", children: [{ status: "completed" }] });
  });

  it("compares log ids by time, then by sequence", () => {
    expect(atOrAfter("1700000000001-0", "1700000000000-9")).toBe(true);
    expect(atOrAfter("1700000000000-9", "1700000000000-9")).toBe(true);
    expect(atOrAfter("1700000000000-10", "1700000000000-9")).toBe(true);
    expect(atOrAfter("1700000000000-8", "1700000000000-9")).toBe(false);
    expect(atOrAfter("-", "1700000000000-9")).toBe(false);
  });
});
