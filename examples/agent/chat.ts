/**
 * A chat agent on a real model when OPENAI_API_KEY is set (OPENAI_MODEL picks
 * the model, default gpt-4o-mini), and on a local fake model that streams a
 * canned answer token by token otherwise, so it works offline.
 *
 * The export is a factory: Baton calls it for every run, so each run gets its
 * own model object (the fake model counts its answers; a shared one would be
 * shared mutable state between conversations).
 */
import type { BaseChatModel } from "@langchain/core/language_models/chat_models";
import { FakeListChatModel } from "@langchain/core/utils/testing";
import { END, MessagesAnnotation, START, StateGraph } from "@langchain/langgraph";
import { ChatOpenAI } from "@langchain/openai";

function chatModel(): BaseChatModel {
  if (process.env.OPENAI_API_KEY) return new ChatOpenAI({ model: process.env.OPENAI_MODEL ?? "gpt-4o-mini" });
  return new FakeListChatModel({
    responses: ["This answer comes from a local stand-in model. Set OPENAI_API_KEY to talk to a real one."],
    sleep: 5,
  });
}

export function graph() {
  const model = chatModel();
  return new StateGraph(MessagesAnnotation)
    .addNode("model", async (state, config) => ({ messages: [await model.invoke(state.messages, config)] }))
    .addEdge(START, "model")
    .addEdge("model", END)
    .compile();
}
