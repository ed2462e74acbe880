/**
 * An offline agent: it reads the last human message, calls a calculator tool
 * when the message contains arithmetic, and calls a `deploy` tool, which a
 * human must approve first, when the message starts with "deploy". No model,
 * no network, the same answer every time.
 *
 * The approval is a human-in-the-loop request in the shape Agent Chat UI
 * renders with Approve and Reject buttons (the `{action_requests,
 * review_configs}` request of LangChain's human-in-the-loop middleware, with
 * snake_case keys as Agent Chat UI reads them), and it resumes with what
 * those buttons send:
 *
 *   submit({}, { command: { resume: { decisions: [{ type: "approve" }] } } })
 *   submit({}, { command: { resume: { decisions: [{ type: "reject", message: "not today" }] } } })
 */
import { AIMessage, ToolMessage, type BaseMessage } from "@langchain/core/messages";
import { END, MessagesAnnotation, START, StateGraph, interrupt } from "@langchain/langgraph";

interface ActionRequest {
  name: string;
  args: Record<string, unknown>;
  description?: string;
}
interface ReviewConfig {
  action_name: string;
  allowed_decisions: ("approve" | "edit" | "reject")[];
}
/** What the graph asks the human: one entry per tool call to review. */
export interface ApprovalRequest {
  action_requests: ActionRequest[];
  review_configs: ReviewConfig[];
}
/** What the human answers: one decision per action request, in order. */
export interface ApprovalResponse {
  decisions: ({ type: "approve" } | { type: "reject"; message?: string })[];
}

/** The text of a message whose content is a string or a list of content blocks (Agent Chat UI sends blocks). */
function textOf(message: BaseMessage | undefined): string {
  const content = message?.content;
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) return "";
  return content
    .map((block) => (typeof block === "string" ? block : block.type === "text" && typeof block.text === "string" ? block.text : ""))
    .join("");
}

const lastHuman = (messages: BaseMessage[]): string => textOf([...messages].reverse().find((m) => m.getType() === "human")).trim();

function calculate(expression: string): string {
  const match = /(-?\d+(?:\.\d+)?)\s*([+\-*/])\s*(-?\d+(?:\.\d+)?)/.exec(expression);
  if (match === null) return "no arithmetic found";
  const [a, op, b] = [Number(match[1]), match[2], Number(match[3])];
  const result = op === "+" ? a + b : op === "-" ? a - b : op === "*" ? a * b : a / b;
  return String(result);
}

const lastToolCall = (messages: BaseMessage[]) => (messages.at(-1) as AIMessage | undefined)?.tool_calls?.[0];

async function agent(state: typeof MessagesAnnotation.State) {
  const last = state.messages.at(-1);
  if (last?.getType() === "tool") {
    if (last.name === "deploy") {
      const failed = (last as ToolMessage).status === "error";
      return { messages: [new AIMessage(failed ? `Not deployed: ${textOf(last)}` : textOf(last))] };
    }
    return { messages: [new AIMessage(`The answer is ${textOf(last)}.`)] };
  }
  const text = lastHuman(state.messages);
  const id = `call_${state.messages.length}`;
  const deploy = /^deploy\b\s*(?:to\s+)?(.*)$/i.exec(text);
  if (deploy !== null) {
    const target = deploy[1] || "production";
    return { messages: [new AIMessage({ content: "", tool_calls: [{ id, name: "deploy", args: { target } }] })] };
  }
  if (/\d\s*[+\-*/]\s*\d/.test(text)) {
    return { messages: [new AIMessage({ content: "", tool_calls: [{ id, name: "calculator", args: { expression: text } }] })] };
  }
  return { messages: [new AIMessage(`You said: ${text}`)] };
}

async function tools(state: typeof MessagesAnnotation.State) {
  const call = lastToolCall(state.messages)!;
  return { messages: [new ToolMessage({ tool_call_id: call.id!, name: call.name, content: calculate(String(call.args.expression)) })] };
}

/** Pauses for a human decision on the deploy call, then deploys (pretend) or records the rejection. */
async function approval(state: typeof MessagesAnnotation.State) {
  const call = lastToolCall(state.messages)!;
  const target = String(call.args.target);
  const response = interrupt<ApprovalRequest, ApprovalResponse | undefined>({
    action_requests: [{ name: call.name, args: call.args, description: `Deploy to ${target}? This needs a human's approval.` }],
    review_configs: [{ action_name: call.name, allowed_decisions: ["approve", "reject"] }],
  });
  const decision = Array.isArray(response?.decisions) ? response.decisions[0] : undefined;
  const reply = (content: string, status: "success" | "error") =>
    ({ messages: [new ToolMessage({ tool_call_id: call.id!, name: call.name, content, status })] });
  if (decision?.type === "approve") return reply(`Deployed to ${target}.`, "success");
  if (decision?.type === "reject") return reply(decision.message || "The human rejected the deployment.", "error");
  throw new Error(
    `Resume the deploy approval with {"decisions": [{"type": "approve"}]} or {"decisions": [{"type": "reject", "message": "why"}]}; got ${JSON.stringify(response)}`,
  );
}

export const graph = new StateGraph(MessagesAnnotation)
  .addNode("agent", agent)
  .addNode("tools", tools)
  .addNode("approval", approval)
  .addEdge(START, "agent")
  .addConditionalEdges("agent", (s) => {
    const call = lastToolCall(s.messages);
    return call === undefined ? END : call.name === "deploy" ? "approval" : "tools";
  }, ["approval", "tools", END])
  .addEdge("tools", "agent")
  .addEdge("approval", "agent")
  .compile();
