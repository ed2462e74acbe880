/**
 * An offline agent: it reads the last human message, calls a calculator tool
 * when the message contains arithmetic, and asks a human to approve before it
 * answers anything that starts with "deploy". No model, no network.
 */
import { AIMessage, ToolMessage, type BaseMessage } from "@langchain/core/messages";
import { Annotation, END, MessagesAnnotation, START, StateGraph, interrupt } from "@langchain/langgraph";

const State = Annotation.Root({
  ...MessagesAnnotation.spec,
  approved: Annotation<boolean | null>({ reducer: (_old, next) => next, default: () => null }),
});

const lastHuman = (messages: BaseMessage[]): string => {
  const human = [...messages].reverse().find((m) => m.getType() === "human");
  return typeof human?.content === "string" ? human.content : "";
};

function calculate(expression: string): string {
  const match = /(-?\d+(?:\.\d+)?)\s*([+\-*/])\s*(-?\d+(?:\.\d+)?)/.exec(expression);
  if (match === null) return "no arithmetic found";
  const [a, op, b] = [Number(match[1]), match[2], Number(match[3])];
  const result = op === "+" ? a + b : op === "-" ? a - b : op === "*" ? a * b : a / b;
  return String(result);
}

async function agent(state: typeof State.State) {
  const last = state.messages.at(-1);
  if (last?.getType() === "tool") {
    return { messages: [new AIMessage(`The answer is ${typeof last.content === "string" ? last.content : JSON.stringify(last.content)}.`)] };
  }
  const text = lastHuman(state.messages);
  if (/\d\s*[+\-*/]\s*\d/.test(text)) {
    return {
      messages: [new AIMessage({ content: "", tool_calls: [{ id: `call_${state.messages.length}`, name: "calculator", args: { expression: text } }] })],
    };
  }
  return { messages: [new AIMessage(`You said: ${text}`)] };
}

async function tools(state: typeof State.State) {
  const call = (state.messages.at(-1) as AIMessage).tool_calls?.[0];
  if (call === undefined) return {};
  return { messages: [new ToolMessage({ tool_call_id: call.id ?? "", content: calculate(String(call.args.expression)) })] };
}

async function approval(state: typeof State.State) {
  const decision = interrupt<{ question: string }, { approved: boolean }>({ question: `Approve "${lastHuman(state.messages)}"?` });
  return {
    approved: decision.approved,
    messages: [new AIMessage(decision.approved ? "Approved: deploying." : "Not approved: nothing was deployed.")],
  };
}

export const graph = new StateGraph(State)
  .addNode("agent", agent)
  .addNode("tools", tools)
  .addNode("approval", approval)
  .addConditionalEdges(START, (s) => (lastHuman(s.messages).toLowerCase().startsWith("deploy") ? "approval" : "agent"), ["approval", "agent"])
  .addConditionalEdges("agent", (s) => ((s.messages.at(-1) as AIMessage).tool_calls?.length ? "tools" : END), ["tools", END])
  .addEdge("tools", "agent")
  .addEdge("approval", END)
  .compile();
