/**
 * The benchmark's graphs, served identically by Baton and the published dev
 * server, and invoked directly for the in-process limit.
 */
import { AIMessage, AIMessageChunk } from "@langchain/core/messages";
import { BaseChatModel } from "@langchain/core/language_models/chat_models";
import type { ChatResult } from "@langchain/core/outputs";
import { ChatGenerationChunk } from "@langchain/core/outputs";
import type { BaseMessage } from "@langchain/core/messages";
import type { CallbackManagerForLLMRun } from "@langchain/core/callbacks/manager";
import { END, MessagesAnnotation, START, StateGraph } from "@langchain/langgraph";

/** Appends one AI message; no sleep. */
export const echo = new StateGraph(MessagesAnnotation)
  .addNode("echo", (s) => ({ messages: [new AIMessage(`echo: ${JSON.stringify(s.messages.at(-1)?.content ?? "")}`)] }))
  .addEdge(START, "echo")
  .addEdge("echo", END)
  .compile();

/** A local chat model that streams `chunks` tokens `delayMs` apart, honouring the abort signal. */
class TickingModel extends BaseChatModel {
  constructor(
    private readonly chunks: number,
    private readonly delayMs: number,
  ) {
    super({});
  }
  _llmType(): string {
    return "ticking";
  }
  override async *_streamResponseChunks(_messages: BaseMessage[], options: this["ParsedCallOptions"], runManager?: CallbackManagerForLLMRun) {
    for (let i = 0; i < this.chunks; i++) {
      await new Promise<void>((resolve, reject) => {
        const onAbort = () => {
          clearTimeout(timer);
          reject(new Error("aborted"));
        };
        // The listener goes with its tick: 20 left on the signal would trip Node's leak warning.
        const timer = setTimeout(() => {
          options.signal?.removeEventListener("abort", onAbort);
          resolve();
        }, this.delayMs);
        options.signal?.addEventListener("abort", onAbort, { once: true });
      });
      const text = `t${i} `;
      const chunk = new ChatGenerationChunk({ text, message: new AIMessageChunk({ content: text }) });
      yield chunk;
      await runManager?.handleLLMNewToken(text, undefined, undefined, undefined, undefined, { chunk });
    }
  }
  async _generate(messages: BaseMessage[], options: this["ParsedCallOptions"], runManager?: CallbackManagerForLLMRun): Promise<ChatResult> {
    let text = "";
    for await (const chunk of this._streamResponseChunks(messages, options, runManager)) text += chunk.text;
    return { generations: [{ text, message: new AIMessage(text) }] };
  }
}

/** Streams 20 chunks 10 ms apart from a local model (a new model per call). */
export const slowEcho = new StateGraph(MessagesAnnotation)
  .addNode("model", async (s, config) => ({ messages: [await new TickingModel(20, 10).invoke(s.messages, config)] }))
  .addEdge(START, "model")
  .addEdge("model", END)
  .compile();

/** Awaits 2 s, honouring the abort signal, then answers. */
export const sleep = new StateGraph(MessagesAnnotation)
  .addNode("sleep", async (_s, config) => {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(resolve, 2000);
      config.signal?.addEventListener("abort", () => (clearTimeout(timer), reject(new Error("aborted"))), { once: true });
    });
    return { messages: [new AIMessage("slept 2 s")] };
  })
  .addEdge(START, "sleep")
  .addEdge("sleep", END)
  .compile();
