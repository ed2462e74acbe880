/**
 * Assistants as the API offers them: every action asks the Authorizer first
 * (`assistants:<action>`, with the value the official handlers see), acts on
 * the value it hands back, and passes its access filter to the port, where
 * it becomes part of the query: a record outside it is not found on a read,
 * update or delete, and left out of a search or count.
 */
import { assistantIdFor, refuseSystemAssistantDelete, resolveAssistant } from "./assistants.ts";
import { restricts, type Authorizer } from "./authorizer.ts";
import type { RequestContext } from "./context.ts";
import { BatonError, conflict, ErrorCode, notFound } from "./errors.ts";
import { matches, type Filter } from "./filter.ts";
import type { AssistantPatch, Assistants, AssistantSearch, NewAssistant, Page } from "./ports.ts";
import type { Assistant, Metadata } from "./types.ts";

export interface AssistantServiceDeps {
  assistants: Assistants;
  /** Graphs of the project: a graph id names its system assistant. */
  graphIds: readonly string[];
  authorizer: Authorizer;
}

type CountQuery = Omit<AssistantSearch, "limit" | "offset" | "sort_by" | "sort_order">;

export class AssistantService {
  readonly #assistants: Assistants;
  readonly #graphIds: readonly string[];
  readonly #authorizer: Authorizer;

  constructor(deps: AssistantServiceDeps) {
    this.#assistants = deps.assistants;
    this.#graphIds = deps.graphIds;
    this.#authorizer = deps.authorizer;
  }

  #knownGraph(graphId: string | undefined): void {
    if (graphId !== undefined && !this.#graphIds.includes(graphId)) {
      throw new BatonError(ErrorCode.notFound, `Graph '${graphId}' not found. Known graphs: ${this.#graphIds.join(", ")}.`);
    }
  }

  /** The assistant an id or graph id names, if the filter lets the caller see it (404 otherwise). */
  #visible(idOrGraph: string, filter: Filter | undefined): Promise<Assistant> {
    return resolveAssistant(this.#assistants, this.#graphIds, idOrGraph, { access: filter });
  }

  /** Creates an assistant (or, with `if_exists: do_nothing`, answers the existing one). */
  async create(ctx: RequestContext, input: NewAssistant): Promise<Assistant> {
    const { value, filter } = await this.#authorizer.authorize(ctx, "assistants", "create", { ...input });
    this.#knownGraph(value.graph_id);
    if (restricts(filter)) {
      // An existing assistant outside the caller's filter is neither shown nor replaced (as on the official server).
      const existing = await this.#assistants.get(value.assistant_id);
      if (existing !== null && !matches(existing.metadata, filter)) throw conflict(`Assistant '${value.assistant_id}' already exists.`);
    }
    return this.#assistants.create(value);
  }

  async get(ctx: RequestContext, idOrGraph: string): Promise<Assistant> {
    const { value, filter } = await this.#authorizer.authorize(ctx, "assistants", "read", { assistant_id: idOrGraph });
    return this.#visible(value.assistant_id, filter);
  }

  /** Writes a new version of the assistant with the patch applied. */
  async patch(ctx: RequestContext, idOrGraph: string, patch: AssistantPatch): Promise<Assistant> {
    const { value, filter } = await this.#authorizer.authorize(ctx, "assistants", "update", { assistant_id: idOrGraph, ...patch });
    const { assistant_id: target, ...fields } = value;
    this.#knownGraph(fields.graph_id);
    const id = (await this.#visible(target, filter)).assistant_id;
    return this.#assistants.patch(id, fields, { access: filter });
  }

  /** Deletes the assistant (and, with `deleteThreads`, its threads); a graph's system assistant is refused. */
  async delete(ctx: RequestContext, idOrGraph: string, options: { deleteThreads: boolean }): Promise<void> {
    const { value, filter } = await this.#authorizer.authorize(ctx, "assistants", "delete", { assistant_id: idOrGraph });
    const id = assistantIdFor(this.#graphIds, value.assistant_id);
    refuseSystemAssistantDelete(this.#graphIds, id);
    if (!(await this.#assistants.delete(id, { ...options, access: filter }))) throw notFound("Assistant", id);
  }

  async search(ctx: RequestContext, query: AssistantSearch): Promise<Assistant[]> {
    const { value, filter } = await this.#authorizer.authorize(ctx, "assistants", "search", {
      graph_id: query.graph_id,
      metadata: query.metadata,
      limit: query.limit,
      offset: query.offset,
    });
    return this.#assistants.search({ ...query, ...value, access: filter });
  }

  async count(ctx: RequestContext, query: CountQuery): Promise<number> {
    const { value, filter } = await this.#authorizer.authorize(ctx, "assistants", "search", {
      graph_id: query.graph_id,
      metadata: query.metadata,
      limit: 0,
      offset: 0,
    });
    return this.#assistants.count({ ...query, graph_id: value.graph_id, metadata: value.metadata, access: filter });
  }

  /** The assistant's versions, newest first; versions whose metadata is outside the filter are left out. */
  async versions(ctx: RequestContext, idOrGraph: string, query: Page & { metadata?: Metadata | undefined }): Promise<Assistant[]> {
    const { value, filter } = await this.#authorizer.authorize(ctx, "assistants", "read", { assistant_id: idOrGraph });
    const id = (await this.#visible(value.assistant_id, filter)).assistant_id;
    return this.#assistants.versions(id, { ...query, access: filter });
  }

  /** Makes an earlier version the latest. */
  async setLatest(ctx: RequestContext, idOrGraph: string, version: number): Promise<Assistant> {
    const { value, filter } = await this.#authorizer.authorize(ctx, "assistants", "update", { assistant_id: idOrGraph, version });
    const id = (await this.#visible(value.assistant_id, filter)).assistant_id;
    return this.#assistants.setLatest(id, value.version, { access: filter });
  }
}
