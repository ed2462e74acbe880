/* global document, location, crypto, URLSearchParams */
/**
 * A small chat page on its own origin that talks to Baton with `useStream()`
 * and sends what Agent Chat UI sends: a human message whose content is a list
 * of content blocks, in "values" stream mode, and Approve/Reject as
 * `submit({}, { command: { resume: { decisions: [...] } } })`.
 * The Baton URL comes from the page's `?api=` query parameter.
 *
 * Plain JavaScript with createElement: the repository has no React type
 * declarations and no JSX setting. esbuild bundles it at test time
 * (test/helpers/browser.ts).
 */
import { useStream } from "@langchain/langgraph-sdk/react";
import { createElement as h, useState } from "react";
import { createRoot } from "react-dom/client";

const apiUrl = new URLSearchParams(location.search).get("api") ?? "";

/** A message's text: string content, text blocks, or a summary of its tool calls. */
function textOf(message) {
  const { content } = message;
  if (typeof content === "string" && content !== "") return content;
  if (Array.isArray(content)) return content.map((block) => (block.type === "text" ? block.text : "")).join("");
  return (message.tool_calls ?? []).map((call) => `calls ${call.name} ${JSON.stringify(call.args)}`).join("; ");
}

function App() {
  const [threadId, setThreadId] = useState(null);
  const [reason, setReason] = useState("");
  const stream = useStream({ apiUrl, assistantId: "agent", threadId, onThreadId: setThreadId });
  const request = stream.interrupt?.value?.action_requests?.[0];

  const send = (event) => {
    event.preventDefault();
    const input = event.currentTarget.elements.namedItem("text");
    const message = { id: crypto.randomUUID(), type: "human", content: [{ type: "text", text: input.value }] };
    void stream.submit({ messages: [message] }, { streamMode: ["values"], streamResumable: true });
    input.value = "";
  };
  const decide = (decision) => void stream.submit({}, { command: { resume: { decisions: [decision] } } });

  return h(
    "main",
    null,
    h("p", { "data-testid": "status" }, stream.isLoading ? "loading" : "idle"),
    h("p", { "data-testid": "thread" }, threadId ?? ""),
    stream.error == null ? null : h("p", { "data-testid": "error" }, String(stream.error)),
    h("ol", { "data-testid": "messages" }, stream.messages.map((m, i) => h("li", { key: m.id ?? i, "data-type": m.type }, textOf(m)))),
    request === undefined
      ? null
      : h(
          "section",
          { "data-testid": "interrupt" },
          h("p", { "data-testid": "description" }, request.description),
          h("button", { onClick: () => decide({ type: "approve" }) }, "Approve"),
          h("input", { "aria-label": "reason", value: reason, onChange: (e) => setReason(e.target.value) }),
          h("button", { onClick: () => decide({ type: "reject", message: reason }) }, "Reject"),
        ),
    h("form", { onSubmit: send }, h("input", { name: "text", "aria-label": "message" }), h("button", { type: "submit" }, "Send")),
  );
}

createRoot(document.getElementById("root")).render(h(App));
