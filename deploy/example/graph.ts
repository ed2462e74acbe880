/**
 * The graph the deployment image serves by default: it answers the last
 * message with "echo: <its text>", with no model and no network, so a fresh
 * image (or cluster) can be checked end to end before a real project is put
 * in its place (docs/deploy.md).
 */
import { AIMessage } from "@langchain/core/messages";
import { END, MessagesAnnotation, START, StateGraph } from "@langchain/langgraph";

export const graph = new StateGraph(MessagesAnnotation)
  .addNode("echo", (state) => {
    const last = state.messages.at(-1);
    const text = typeof last?.content === "string" ? last.content : JSON.stringify(last?.content ?? "");
    return { messages: [new AIMessage(`echo: ${text}`)] };
  })
  .addEdge(START, "echo")
  .addEdge("echo", END)
  .compile();
