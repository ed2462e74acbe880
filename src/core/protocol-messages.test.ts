/**
 * A protocol run on a project whose LangGraph has no v3 stream: its message
 * chunks become the protocol's message events, which the official SDK's
 * MessageAssembler (what useStream() builds messages with) assembles into
 * the whole message, token by token.
 */
import { AIMessage, AIMessageChunk } from "@langchain/core/messages";
import { MessageAssembler } from "@langchain/langgraph-sdk";
import { describe, expect, it } from "vitest";
import { LegacyProtocolMessages, type ProtocolMessageEntry } from "./protocol-messages.ts";
import { protocolEvents } from "./protocol.ts";

/** The protocol events of the entries, as the thread's log would give them (one log entry each). */
function asProtocol(entries: ProtocolMessageEntry[], first = 0) {
  return entries.flatMap((entry, i) =>
    protocolEvents({ id: `1800000000000-${first + i}`, run_id: "run", event: `protocol.messages${entry.namespace.map((s) => `|${s}`).join("")}`, data: entry.payload }, 0),
  );
}

describe("LegacyProtocolMessages", () => {
  it("starts a message at its first chunk, sends each chunk's text as a delta, and finishes it at the end of the step", () => {
    const legacy = new LegacyProtocolMessages();
    const meta = { langgraph_node: "model" };
    const chunks = ["hel", "lo", "", " world"].flatMap((text) => legacy.chunk([], [new AIMessageChunk({ id: "m1", content: text }), meta]));
    const finished = legacy.finishAll();
    const events = asProtocol([...chunks, ...finished]);
    expect(events.map((e) => (e.params.data as { event: string }).event)).toEqual([
      "message-start",
      "content-block-start",
      "content-block-delta",
      "content-block-delta",
      "content-block-delta",
      "content-block-finish",
      "message-finish",
    ]);
    expect(new Set(events.map((e) => e.params.node))).toEqual(new Set(["model"]));
    const assembler = new MessageAssembler();
    // The text block as each event leaves it: empty at its start, growing by each delta, whole at its finish and the message's.
    const texts = events.map((event) => (assembler.consume(event as never)?.message.blocks[0] as { text: string } | undefined)?.text);
    expect(texts).toEqual([undefined, "", "hel", "hello", "hello world", "hello world", "hello world"]);
    expect(legacy.finishAll()).toEqual([]);
  });

  it("leaves whole messages and chunks without an id to values, and tells the legacy form from protocol events", () => {
    const legacy = new LegacyProtocolMessages();
    expect(legacy.chunk([], [new AIMessage({ id: "m2", content: "whole" }), {}])).toEqual([]);
    expect(legacy.chunk([], [new AIMessageChunk({ content: "no id" }), {}])).toEqual([]);
    expect(LegacyProtocolMessages.isLegacy([new AIMessageChunk({ id: "m3", content: "x" }), {}])).toBe(true);
    expect(LegacyProtocolMessages.isLegacy([{ event: "message-start", id: "m3" }, {}])).toBe(false);
  });
});
