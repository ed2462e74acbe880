/**
 * A protocol run's model messages when the project's LangGraph predates its
 * v3 stream (docs/streaming.md): such a LangGraph ignores `version: "v3"`
 * and its `messages` mode gives message chunks (`[chunk, metadata]`) instead
 * of protocol events. This turns them into the protocol's message events in
 * the worker, which sees every chunk of the attempt in order: a message's
 * first chunk starts it (`message-start`, a text block), each chunk's text
 * is a `text-delta`, and the end of the step (the root `values` that follows
 * the node) finishes every message still open, with its whole text.
 * Reasoning and tool call chunks are left to `values`.
 */
import { isBaseMessageChunk } from "@langchain/core/messages";

/** A protocol message event with the metadata the executor keeps (`[event, {langgraph_node, run_id}]`), and the namespace it goes out under. */
export interface ProtocolMessageEntry {
  namespace: string[];
  payload: [Record<string, unknown>, { langgraph_node: unknown; run_id: unknown }];
}

interface OpenMessage {
  namespace: string[];
  meta: { langgraph_node: unknown; run_id: unknown };
  text: string;
}

/** The text a chunk adds: its string content, or its text blocks. */
function chunkText(content: unknown): string {
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) return "";
  return content
    .map((block: unknown) => {
      const { type, text } = (typeof block === "object" && block !== null ? block : {}) as { type?: unknown; text?: unknown };
      return type === "text" && typeof text === "string" ? text : "";
    })
    .join("");
}

export class LegacyProtocolMessages {
  readonly #open = new Map<string, OpenMessage>();

  /** Whether a `messages` chunk is the legacy form (a message chunk) rather than a protocol event. */
  static isLegacy(payload: unknown): boolean {
    return Array.isArray(payload) && isBaseMessageChunk(payload[0]);
  }

  /** The protocol events of one legacy chunk (none for a chunk without id or a whole message, which `values` carries). */
  chunk(namespace: string[], payload: [unknown, Record<string, unknown> | undefined]): ProtocolMessageEntry[] {
    const [message, metadata] = payload;
    if (!isBaseMessageChunk(message) || typeof message.id !== "string" || message.id === "") return [];
    const meta = { langgraph_node: metadata?.langgraph_node, run_id: metadata?.run_id };
    const entries: ProtocolMessageEntry[] = [];
    let open = this.#open.get(message.id);
    if (open === undefined) {
      open = { namespace, meta, text: "" };
      this.#open.set(message.id, open);
      entries.push({ namespace, payload: [{ event: "message-start", id: message.id, role: "ai" }, meta] });
      entries.push({ namespace, payload: [{ event: "content-block-start", index: 0, content: { type: "text", text: "" } }, meta] });
    }
    const text = chunkText(message.content);
    if (text !== "") {
      open.text += text;
      entries.push({ namespace, payload: [{ event: "content-block-delta", index: 0, delta: { type: "text-delta", text } }, meta] });
    }
    return entries;
  }

  /** The end of a step: every open message finishes, with its whole text. */
  finishAll(): ProtocolMessageEntry[] {
    const entries = [...this.#open.values()].flatMap(({ namespace, meta, text }): ProtocolMessageEntry[] => [
      { namespace, payload: [{ event: "content-block-finish", index: 0, content: { type: "text", text } }, meta] },
      { namespace, payload: [{ event: "message-finish" }, meta] },
    ]);
    this.#open.clear();
    return entries;
  }
}
