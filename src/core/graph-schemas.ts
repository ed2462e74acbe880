/**
 * JSON schemas of graphs (input, output, state, config), the way the
 * official server finds them, with its published extractor
 * (`@langchain/langgraph-api/schema`):
 *
 * 1. at runtime, from the running graph when its state is a zod schema or a
 *    `StateSchema` (fast, nothing cached);
 * 2. otherwise statically, from the TypeScript types in the graph's source
 *    (`Annotation.Root` state, literal unions as enums, subgraphs by node).
 *
 * The static pass runs the TypeScript compiler, which takes seconds. It runs
 * once per graph, lazily on the first request that needs it (so start-up
 * and graphs nobody asks about pay nothing), one graph per compile (as the
 * official server does: graphs compiled together share type names, and can
 * get each other's definitions), one compile at a time, in a worker thread
 * (so the event loop never waits), and its result is cached for the
 * server's life.
 * When the static pass fails for a graph (a JavaScript file, say), the
 * graph's schemas name its state channels, untyped, and a warning says why.
 */
import { Worker } from "node:worker_threads";
import type { Pregel } from "@langchain/langgraph";
import { getRuntimeGraphSchema, type GraphSchema } from "@langchain/langgraph-api/schema";
import { coerceError } from "./errors.ts";
import { parseSpec, type GraphInstance, type GraphSource } from "./graphs.ts";
import type { Logger } from "./logger.ts";

export type { GraphSchema };

/** A file and export, as the extractor takes them. */
type StaticSpec = { sourceFile: string; exportSymbol: string };
/** One graph's static schemas: its own under the export's name, its subgraphs' under `name|node|…`. */
type StaticSchemas = Record<string, GraphSchema>;

/** Longer than the official server's default (30 s): a 2-core machine compiling a large project is slow, not broken. */
const EXTRACT_TIMEOUT_MS = 120_000;

/**
 * Runs the published extractor in a worker thread of ours (not the one it
 * would start itself) so that the server can stop it on close and route the
 * compiler diagnostics it prints to the log.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
import(workerData.extractor)
  .then(({ getStaticGraphSchema }) => getStaticGraphSchema(workerData.specs, { mainThread: true }))
  .then((result) => parentPort.postMessage({ result }), (error) => parentPort.postMessage({ error: String((error && error.message) || error) }));
`;

export class GraphSchemas {
  readonly #specs: Record<string, StaticSpec>;
  readonly #logger: Logger;
  readonly #workers = new Set<Worker>();
  /** Each graph's static schemas (undefined when the extractor failed for it), cached for the server's life. */
  readonly #byGraph = new Map<string, Promise<StaticSchemas | undefined>>();
  /** The extractions that have ended, with what they found. */
  readonly #extracted = new Map<string, StaticSchemas | undefined>();
  /** The compile in progress: the next waits for it (one compiler's memory at a time). */
  #queue: Promise<void> = Promise.resolve();
  #closed = false;

  constructor(sources: GraphSource[], baseDir: string, logger: Logger) {
    this.#specs = Object.fromEntries(
      sources.map(({ graphId, spec }) => {
        const { path, exportName } = parseSpec(baseDir, spec);
        return [graphId, { sourceFile: path, exportSymbol: exportName }];
      }),
    );
    this.#logger = logger;
  }

  /** The schemas of a graph (`graph` is its instance for the request's config). */
  async root(graphId: string, graph: GraphInstance): Promise<GraphSchema> {
    const runtime = await getRuntimeGraphSchema(graph as unknown as Pregel<any, any>);
    if (runtime !== undefined) return runtime;
    return (await this.#typed(graphId)) ?? channelSchemas(graph);
  }

  /**
   * The schemas of a graph without waiting for the TypeScript compiler
   * (for answers that list many graphs at once, such as MCP's tools): the
   * runtime schema, else the static one if already extracted, else the
   * graph's channels untyped, while the extraction starts for next time.
   */
  async rootNow(graphId: string, graph: GraphInstance): Promise<GraphSchema> {
    const runtime = await getRuntimeGraphSchema(graph as unknown as Pregel<any, any>);
    if (runtime !== undefined) return runtime;
    if (!this.#extracted.has(graphId)) {
      void this.#static(graphId);
      return channelSchemas(graph);
    }
    const found = this.#extracted.get(graphId);
    const own = found === undefined ? undefined : Object.keys(found).find((key) => !key.includes("|"));
    return own === undefined ? channelSchemas(graph) : found![own]!;
  }

  /**
   * The schemas of a graph's subgraphs, by namespace, as
   * `getSubgraphsAsync(namespace, recurse)` lists them.
   */
  async subgraphs(graphId: string, graph: GraphInstance, namespace: string | undefined, recurse: boolean): Promise<Record<string, GraphSchema>> {
    const out: Record<string, GraphSchema> = {};
    for await (const [ns, subgraph] of graph.getSubgraphsAsync(namespace, recurse)) {
      const runtime = await getRuntimeGraphSchema(subgraph as unknown as Pregel<any, any>);
      out[ns] = runtime ?? (await this.#typed(graphId, ns)) ?? channelSchemas(subgraph);
    }
    return out;
  }

  /** Stops a compiler run in progress; later requests get untyped schemas. */
  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all([...this.#workers].map((worker) => worker.terminate()));
  }

  /**
   * A graph's static schemas, or with `ns` its subgraph's; a subgraph the
   * static pass did not find gets the root graph's, as on the official server.
   */
  async #typed(graphId: string, ns?: string): Promise<GraphSchema | undefined> {
    const found = await this.#static(graphId);
    const own = found === undefined ? undefined : Object.keys(found).find((key) => !key.includes("|"));
    if (own === undefined) return undefined;
    return (ns === undefined ? undefined : found![`${own}|${ns}`]) ?? found![own];
  }

  /**
   * One graph's static schemas, extracted once, on its own: the extractor
   * names shared types once per call, so graphs extracted together can get
   * each other's definitions (a `RemoveMessage` of the SDK's for one of
   * @langchain/core's). Compiles run one at a time, each in a worker thread.
   */
  #static(graphId: string): Promise<StaticSchemas | undefined> {
    let found = this.#byGraph.get(graphId);
    if (found === undefined) {
      const extracted = this.#queue.then(() => this.#extract({ [graphId]: this.#specs[graphId]! }));
      this.#queue = extracted.then(
        () => undefined,
        () => undefined,
      );
      found = extracted.then(
        (result) => {
          this.#extracted.set(graphId, result[graphId]);
          return result[graphId];
        },
        (cause: unknown) => {
          this.#logger.warn("schemas:static-failed", {
            graph_id: graphId,
            file: this.#specs[graphId]!.sourceFile,
            error: `the TypeScript schema extractor failed: ${coerceError(cause).message}`,
            detail: "its schemas name its state channels, untyped",
          });
          this.#extracted.set(graphId, undefined);
          return undefined;
        },
      );
      this.#byGraph.set(graphId, found);
    }
    return found;
  }

  /** One run of the extractor over `specs`, in a worker thread. */
  #extract(specs: Record<string, StaticSpec>): Promise<Record<string, StaticSchemas>> {
    if (this.#closed) return Promise.reject(new Error("the server is closing"));
    const started = Date.now();
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { extractor: import.meta.resolve("@langchain/langgraph-api/schema"), specs },
      stdout: true,
      stderr: true,
    });
    this.#workers.add(worker);
    // The compiler's diagnostics (why a schema may be untyped), line by line.
    for (const stream of [worker.stdout, worker.stderr]) {
      stream.setEncoding("utf8");
      stream.on("data", (text: string) => {
        for (const line of text.split("\n")) if (line.trim() !== "") this.#logger.debug("schemas:compiler", { line });
      });
    }
    return new Promise<Record<string, StaticSchemas>>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`schema extraction took longer than ${EXTRACT_TIMEOUT_MS / 1000} s`)), EXTRACT_TIMEOUT_MS);
      worker.once("message", (message: { result?: Record<string, StaticSchemas>; error?: string }) => {
        if (message.error === undefined) resolve(message.result!);
        else reject(new Error(message.error));
      });
      worker.once("error", reject);
      worker.once("exit", () => {
        clearTimeout(timer);
        this.#workers.delete(worker);
        reject(new Error("schema extraction stopped"));
      });
    })
      .then((result) => {
        this.#logger.info("schemas:extracted", { graphs: Object.keys(specs), ms: Date.now() - started });
        return result;
      })
      .finally(() => void worker.terminate());
  }
}

/** What is known without types: an object with the graph's state channels. */
function channelSchemas(graph: GraphInstance): GraphSchema {
  const properties = Object.fromEntries(
    Object.keys(graph.channels)
      .filter((name) => !name.startsWith("__") && !name.startsWith("branch:"))
      .map((name) => [name, {}]),
  );
  const object = { type: "object" as const, properties };
  return { state: object, input: object, output: object, config: { type: "object", properties: {} } };
}
