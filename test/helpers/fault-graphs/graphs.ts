/**
 * The graph of the fault-injection tests (test/scale-out/faults.test.ts).
 * `relay` answers the last human message `<token> ms:<n>` in two steps:
 * `first: <message>`, then, after holding the run for n ms (so faults land
 * on runs in flight), `echo: <message>`. Each execution of its second step
 * appends the message to the file named by BATON_FAULT_LOG, so the test can
 * count how many times a run's work was done.
 */
import { appendFileSync } from "node:fs";
import { AIMessage, type BaseMessage } from "@langchain/core/messages";
import { END, MessagesAnnotation, START, StateGraph } from "@langchain/langgraph";

const text = (m: BaseMessage | undefined) => (typeof m?.content === "string" ? m.content : JSON.stringify(m?.content ?? ""));
const asked = (messages: BaseMessage[]) => text(messages.findLast((m) => m.getType() === "human"));

export const relay = new StateGraph(MessagesAnnotation)
  .addNode("first", (s) => ({ messages: [new AIMessage(`first: ${asked(s.messages)}`)] }))
  .addNode("second", async (s, config) => {
    const message = asked(s.messages);
    const ms = Number(/ms:(\d+)/.exec(message)?.[1] ?? 0);
    await new Promise<void>((resolve, reject) => {
      const signal = config.signal;
      if (signal?.aborted) return reject(new Error("aborted"));
      const timer = setTimeout(resolve, ms);
      signal?.addEventListener("abort", () => (clearTimeout(timer), reject(new Error("aborted"))), { once: true });
    });
    const log = process.env.BATON_FAULT_LOG;
    if (log) appendFileSync(log, `${message}\n`);
    return { messages: [new AIMessage(`echo: ${message}`)] };
  })
  .addEdge(START, "first")
  .addEdge("first", "second")
  .addEdge("second", END)
  .compile();
