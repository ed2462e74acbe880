/**
 * The graph registry: loads the graphs a project lists, and hands each run a
 * graph instance of its own (C5). A compiled graph is copied per run with the
 * run's checkpointer and store attached (the shared compiled graph is never
 * mutated); a StateGraph is compiled once and copied the same way; a factory
 * is called per run with the run's config, or, for a run's execution, its
 * instances are leased from an agent pool (agent-pool.ts, docs/agent-pools.md).
 */
import { isAbsolute, relative, resolve, sep } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { RunnableConfig } from "@langchain/core/runnables";
import type { BaseStore } from "@langchain/langgraph";
import type { BaseCheckpointSaver } from "@langchain/langgraph-checkpoint";
import { AgentPool, poolKey, watchedConfig, type AgentPoolOptions, type ConfigHolder, type Lease } from "./agent-pool.ts";
import { BatonError, ErrorCode, coerceError } from "./errors.ts";

/** The part of a compiled LangGraph graph the server uses. */
export type GraphInstance = {
  stream(input: unknown, options?: Record<string, unknown>): Promise<AsyncIterable<unknown>>;
  streamEvents(input: unknown, options: Record<string, unknown>): AsyncIterable<any>;
  getState(config: RunnableConfig, options?: { subgraphs?: boolean }): Promise<any>;
  getStateHistory(config: RunnableConfig, options?: Record<string, unknown>): AsyncIterable<any>;
  updateState(config: RunnableConfig, values: unknown, asNode?: string): Promise<RunnableConfig>;
  getGraphAsync(config?: RunnableConfig & { xray?: boolean | number }): Promise<{ toJSON(): unknown }>;
  getSubgraphsAsync(namespace?: string, recurse?: boolean): AsyncIterable<[string, GraphInstance]>;
  withConfig(config: RunnableConfig): GraphInstance;
  checkpointer?: unknown;
  store?: unknown;
  nodes: Record<string, unknown>;
  channels: Record<string, unknown>;
  builder?: unknown;
};

export interface GraphSource {
  graphId: string;
  /** `./path/to/file.ts:exportName` as written in langgraph.json. */
  spec: string;
}

type Loaded =
  | { kind: "compiled"; graph: GraphInstance }
  | { kind: "factory"; factory: (config: RunnableConfig) => unknown };

const isCompiled = (value: unknown): value is GraphInstance =>
  typeof value === "object" && value !== null && typeof (value as GraphInstance).stream === "function" && "nodes" in value;
const isBuilder = (value: unknown): value is { compile(): GraphInstance } =>
  typeof value === "object" && value !== null && typeof (value as { compile?: unknown }).compile === "function";
const isThenable = (value: unknown): value is PromiseLike<unknown> =>
  (typeof value === "object" || typeof value === "function") && value !== null && typeof (value as PromiseLike<unknown>).then === "function";

/**
 * What an export (or a factory) gave, as the compiled graph to run, by the
 * official loader's rule: a StateGraph is compiled; a wrapper that holds
 * its compiled graph under `.graph` (LangChain 1.x `createAgent`, deepagents'
 * `createDeepAgent`: a ReactAgent) is unwrapped to it.
 */
function asCompiled(value: unknown, graphId: string): GraphInstance {
  const graph = isBuilder(value) ? value.compile() : value;
  const inner = typeof graph === "object" && graph !== null ? (graph as { graph?: unknown }).graph : undefined;
  if (isCompiled(inner) && typeof inner.builder === "object" && inner.builder !== null) return inner;
  if (isCompiled(graph)) return graph;
  throw new BatonError(
    ErrorCode.invalid,
    `Graph '${graphId}' is neither a compiled graph, a StateGraph, an agent holding one (createAgent), nor a function or Promise giving one.`,
  );
}

/** A graph instance leased to one run; `release` once the run no longer uses it. */
export interface GraphLease {
  graph: GraphInstance;
  /** `reuse`: the run succeeded, so a pooled instance may serve another run. */
  release(reuse: boolean): void;
}

/** A pooled factory instance: the factory's graph and the config its factory sees. */
type Pooled = { base: GraphInstance; holder: ConfigHolder };

export class GraphRegistry {
  readonly #loaded = new Map<string, Loaded>();
  readonly #sources: GraphSource[];
  readonly #baseDir: string;
  /** Factory instances of this registry (so of this process or execution thread). */
  readonly pool: AgentPool<Pooled>;

  constructor(sources: GraphSource[], baseDir: string, agentPool?: Partial<AgentPoolOptions>) {
    this.#sources = sources;
    this.#baseDir = baseDir;
    this.pool = new AgentPool<Pooled>(agentPool);
  }

  get ids(): string[] {
    return this.#sources.map((s) => s.graphId);
  }

  has(graphId: string): boolean {
    return this.#loaded.has(graphId);
  }

  /** Imports every graph; throws naming the graph that failed. */
  async loadAll(): Promise<void> {
    for (const source of this.#sources) {
      this.#loaded.set(source.graphId, await this.#load(source));
    }
  }

  async #load(source: GraphSource): Promise<Loaded> {
    const { path, exportName } = parseSpec(this.#baseDir, source.spec);
    let module: Record<string, unknown>;
    try {
      module = (await import(pathToFileURL(path).href)) as Record<string, unknown>;
    } catch (error) {
      throw new BatonError(ErrorCode.invalid, `Graph '${source.graphId}' failed to load from ${path}: ${coerceError(error).message}${whereThrown(error, this.#baseDir)}`, {
        cause: error,
      });
    }
    let exported = module[exportName];
    if (exported === undefined) {
      const names = Object.keys(module).join(", ") || "none";
      throw new BatonError(ErrorCode.invalid, `Graph '${source.graphId}': ${path} has no export '${exportName}' (exports: ${names}).`);
    }
    // A Promise of a graph, a StateGraph or a factory is awaited once, at start.
    if (isThenable(exported)) {
      try {
        exported = await exported;
      } catch (error) {
        throw new BatonError(ErrorCode.invalid, `Graph '${source.graphId}': the Promise exported as '${exportName}' by ${path} rejected: ${coerceError(error).message}${whereThrown(error, this.#baseDir)}`, {
          cause: error,
        });
      }
    }
    if (typeof exported === "function" && !isCompiled(exported) && !isBuilder(exported)) {
      return { kind: "factory", factory: exported as (config: RunnableConfig) => unknown };
    }
    return { kind: "compiled", graph: asCompiled(exported, source.graphId) };
  }

  /** The graph for read-only use (drawing, schemas); factories are called with `config`. */
  async describe(graphId: string, config: RunnableConfig): Promise<GraphInstance> {
    const loaded = this.#loaded.get(graphId);
    if (loaded === undefined) throw new BatonError(ErrorCode.notFound, `Graph '${graphId}' not found. Known graphs: ${this.ids.join(", ")}.`);
    return loaded.kind === "compiled" ? loaded.graph : asCompiled(await loaded.factory(config), graphId);
  }

  /**
   * A graph instance for one run (or one state read), with the given
   * checkpointer and store attached to the copy, never to the shared graph.
   */
  async instance(
    graphId: string,
    config: RunnableConfig,
    attach: { checkpointer: BaseCheckpointSaver; store: BaseStore },
  ): Promise<GraphInstance> {
    return attached(await this.describe(graphId, config), attach);
  }

  /**
   * A graph instance for one run's execution, leased to it alone. A
   * factory's instance comes from the agent pool, keyed by the graph, the
   * run's user (`owner`, null for none) and its config but the run-specific
   * values; a compiled graph is copied as by `instance`. Every lease must be
   * released, with `reuse` true only when the run succeeded.
   */
  async lease(
    graphId: string,
    config: RunnableConfig,
    attach: { checkpointer: BaseCheckpointSaver; store: BaseStore },
    owner: string | null,
  ): Promise<GraphLease> {
    const loaded = this.#loaded.get(graphId);
    if (loaded?.kind !== "factory") return { graph: await this.instance(graphId, config, attach), release: () => {} };
    const lease: Lease<Pooled> = await this.pool.lease(poolKey(graphId, owner, config), owner, async () => {
      const holder: ConfigHolder = { current: config, building: true, tainted: false };
      try {
        return { base: asCompiled(await loaded.factory(watchedConfig(holder)), graphId), holder };
      } finally {
        holder.building = false;
      }
    });
    const { base, holder } = lease.value;
    // The factory's view of the config follows the run that holds the instance.
    holder.current = config;
    return {
      graph: attached(base, attach),
      release: (reuse) => lease.release(reuse && !holder.tainted),
    };
  }
}

/** A copy of `base` with the checkpointer and store attached, `base` untouched. */
function attached(base: GraphInstance, attach: { checkpointer: BaseCheckpointSaver; store: BaseStore }): GraphInstance {
  const copy = base.withConfig({});
  copy.checkpointer = attach.checkpointer;
  copy.store = attach.store;
  return copy;
}

/**
 * Where an error thrown while loading a graph came from, for a start-up
 * message that has no room for the stack: ` (thrown at <frame>, from <the
 * first frame in the project's own files>)`, paths relative to the project.
 * Empty for Node's own errors (`ERR_MODULE_NOT_FOUND`...: their message
 * names the importing file, their stack only the module loader's frames) and
 * when the stack names no file.
 */
export function whereThrown(error: unknown, baseDir: string): string {
  const code = (error as { code?: unknown } | undefined)?.code;
  if (typeof code === "string" && code.startsWith("ERR_")) return "";
  const frames: { file: string; at: string }[] = [];
  for (const line of (error instanceof Error ? (error.stack ?? "") : "").split("\n").slice(1)) {
    // `at fn (/abs/file.js:1:2)` or `at /abs/file.js:1:2`; not `node:internal/...` frames.
    const match = /(?:^at |\()((?:file:\/\/)?\/[^()\s]+):(\d+:\d+)\)?$/.exec(line.trim());
    if (match === null) continue;
    const file = match[1]!.startsWith("file://") ? fileURLToPath(match[1]!) : match[1]!;
    frames.push({ file, at: `${file.startsWith(baseDir + sep) ? relative(baseDir, file) : file}:${match[2]}` });
  }
  if (frames.length === 0) return "";
  const own = frames.find(({ file }) => file.startsWith(baseDir + sep) && !file.includes(`${sep}node_modules${sep}`));
  return own === undefined || own === frames[0] ? ` (thrown at ${frames[0]!.at})` : ` (thrown at ${frames[0]!.at}, from ${own.at})`;
}

/** `./file.ts:name` (as langgraph.json writes it) to the file's absolute path and the export's name (`default` without one). */
export function parseSpec(baseDir: string, spec: string): { path: string; exportName: string } {
  const colon = spec.lastIndexOf(":");
  const file = colon > 1 ? spec.slice(0, colon) : spec;
  return { path: isAbsolute(file) ? file : resolve(baseDir, file), exportName: colon > 1 ? spec.slice(colon + 1) : "default" };
}

/** The export a spec names, for `checkpointer.path` and `http.app`. */
export async function importExport(baseDir: string, spec: string): Promise<unknown> {
  const { path, exportName } = parseSpec(baseDir, spec);
  const module = (await import(pathToFileURL(path).href)) as Record<string, unknown>;
  if (module[exportName] === undefined) throw new BatonError(ErrorCode.invalid, `${path} has no export '${exportName}'.`);
  return module[exportName];
}
