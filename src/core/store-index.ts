/**
 * The store's semantic index (langgraph.json `store.index`): the embedding
 * function it names, loaded at start, and the texts of an item it embeds.
 * See docs/store.md.
 */
import { createRequire } from "node:module";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { BatonError, ErrorCode, invalid } from "./errors.ts";
import { importExport } from "./graphs.ts";
import type { StoreVector } from "./ports.ts";
import type { JsonObject } from "./types.ts";

/** `store.index` as langgraph.json gives it (validated by src/config.ts). */
export interface StoreIndexSettings {
  /** `./file.ts:export` (an Embeddings object or a function of texts), or `provider:model`. */
  embed: string;
  dims: number;
  /** JSON paths into an item's value; `$` is the whole value. */
  fields: string[];
}

/** `store.ttl` as langgraph.json gives it, with Baton's defaults. */
export interface StoreTtlSettings {
  /** Whether get and search push the TTL of what they return forward, unless the request says otherwise. */
  refreshOnRead: boolean;
  /** Minutes an item put without a `ttl` lives; null: forever. */
  defaultTtlMinutes: number | null;
  /** Minutes between sweeps that delete expired items. */
  sweepIntervalMinutes: number;
}

/** Items one semantic search ranks at most (storeSearchMaxCandidates): more is a 422 asking for a narrower search. */
export const DEFAULT_SEARCH_MAX_CANDIDATES = 10_000;

export const DEFAULT_STORE_TTL: StoreTtlSettings = { refreshOnRead: true, defaultTtlMinutes: null, sweepIntervalMinutes: 60 };

/** A loaded index: what to embed and how. */
export interface StoreIndex {
  dims: number;
  fields: string[];
  /** What embeds, for logs: the path or provider string. */
  embed: string;
  embedDocuments(texts: string[]): Promise<number[][]>;
  embedQuery(text: string): Promise<number[]>;
}

/**
 * Providers a `provider:model` string may name, with the LangChain
 * integration package and the class it exports (as LangChain's
 * init_embeddings maps them).
 */
const PROVIDERS: Record<string, { pkg: string; className: string; modelOption: string }> = {
  openai: { pkg: "@langchain/openai", className: "OpenAIEmbeddings", modelOption: "model" },
  azure_openai: { pkg: "@langchain/openai", className: "AzureOpenAIEmbeddings", modelOption: "model" },
  cohere: { pkg: "@langchain/cohere", className: "CohereEmbeddings", modelOption: "model" },
  google_genai: { pkg: "@langchain/google-genai", className: "GoogleGenerativeAIEmbeddings", modelOption: "model" },
  google_vertexai: { pkg: "@langchain/google-vertexai", className: "VertexAIEmbeddings", modelOption: "model" },
  bedrock: { pkg: "@langchain/aws", className: "BedrockEmbeddings", modelOption: "model" },
  mistralai: { pkg: "@langchain/mistralai", className: "MistralAIEmbeddings", modelOption: "model" },
  ollama: { pkg: "@langchain/ollama", className: "OllamaEmbeddings", modelOption: "model" },
};

const isPath = (embed: string) => embed.startsWith(".") || embed.startsWith("/") || /\.(m|c)?[jt]sx?(:|$)/.test(embed);

const configError = (message: string) => new BatonError(ErrorCode.invalid, `langgraph.json store.index.embed: ${message}`);

interface EmbeddingsLike {
  embedDocuments(texts: string[]): Promise<number[][]>;
  embedQuery(text: string): Promise<number[]>;
}

const isEmbeddings = (value: unknown): value is EmbeddingsLike =>
  typeof value === "object" && value !== null && typeof (value as EmbeddingsLike).embedDocuments === "function" && typeof (value as EmbeddingsLike).embedQuery === "function";

/** An export (an Embeddings object, or a function of a list of texts) as the two calls the store makes. */
function asEmbeddings(exported: unknown, embed: string): EmbeddingsLike {
  if (isEmbeddings(exported)) return exported;
  if (typeof exported === "function") {
    const fn = exported as (texts: string[]) => number[][] | Promise<number[][]>;
    return {
      embedDocuments: async (texts) => fn(texts),
      embedQuery: async (text) => (await fn([text]))[0]!,
    };
  }
  throw configError(`'${embed}' is neither a LangChain Embeddings object (embedDocuments and embedQuery) nor a function of a list of texts to a list of vectors.`);
}

/** The provider's LangChain integration, resolved from the project's own packages. */
async function providerEmbeddings(baseDir: string, embed: string): Promise<EmbeddingsLike> {
  const colon = embed.indexOf(":");
  const provider = colon > 0 ? embed.slice(0, colon) : "";
  const model = colon > 0 ? embed.slice(colon + 1) : "";
  const known = PROVIDERS[provider];
  if (known === undefined || model === "") {
    throw configError(`'${embed}' is not a path ("./embeddings.ts:embed") nor "provider:model" with a known provider (${Object.keys(PROVIDERS).join(", ")}).`);
  }
  let resolved: string;
  try {
    resolved = createRequire(join(baseDir, "package.json")).resolve(known.pkg);
  } catch {
    throw configError(`'${embed}' needs the LangChain integration ${known.pkg}, which the project does not have: install it (npm install ${known.pkg}) or name your own embedding function ("./embeddings.ts:embed").`);
  }
  const module = (await import(pathToFileURL(resolved).href)) as Record<string, unknown>;
  const Class = module[known.className] as (new (options: Record<string, unknown>) => unknown) | undefined;
  if (typeof Class !== "function") throw configError(`${known.pkg} has no export ${known.className}; update it.`);
  return asEmbeddings(new Class({ [known.modelOption]: model }), embed);
}

/** A wrong answer of the embedding function: the server's fault (502), named for the client. */
const wrongShape = (embed: string, what: string) => new BatonError(ErrorCode.badGateway, `store embedding provider ${embed} returned ${what}.`);

/**
 * Checks that every vector has `dims` numbers, naming what returned them
 * otherwise (a store of mixed lengths could not rank its items).
 */
function checked(vectors: number[][], dims: number, embed: string, count: number): number[][] {
  if (!Array.isArray(vectors) || vectors.length !== count) {
    throw wrongShape(embed, `${Array.isArray(vectors) ? vectors.length : typeof vectors} vectors for ${count} texts`);
  }
  for (const vector of vectors) {
    if (!Array.isArray(vector) && !ArrayBuffer.isView(vector)) throw wrongShape(embed, "a vector that is not a list of numbers");
    if (vector.length !== dims) throw wrongShape(embed, `vectors of ${vector.length} dimensions; langgraph.json store.index.dims is ${dims}. Make them agree`);
    // NaN or Infinity would make every similarity with it NaN: such a vector cannot be ranked.
    const at = Array.prototype.findIndex.call(vector, (x: unknown) => typeof x !== "number" || !Number.isFinite(x));
    if (at !== -1) throw wrongShape(embed, `a vector whose element ${at} is ${String((vector as ArrayLike<unknown>)[at])}, not a finite number`);
  }
  return vectors.map((vector) => Array.from(vector));
}

/** Loads the embedding function `store.index` names. */
export async function loadStoreIndex(baseDir: string, settings: StoreIndexSettings): Promise<StoreIndex> {
  const { embed, dims } = settings;
  const embeddings = isPath(embed) ? asEmbeddings(await importExport(baseDir, embed), embed) : await providerEmbeddings(baseDir, embed);
  return {
    dims,
    fields: settings.fields,
    embed,
    embedDocuments: async (texts) => (texts.length === 0 ? [] : checked(await embeddings.embedDocuments(texts), dims, embed, texts.length)),
    embedQuery: async (text) => checked([await embeddings.embedQuery(text)], dims, embed, 1)[0]!,
  };
}

/** Whether `embed` names the project's own function (checked at start by embedding a probe) rather than a remote provider. */
export const isLocalEmbed = isPath;

/** A path's steps: `a.b[0].c[*]` is a, b, [0], c, [*]; `a.{b,c[0]}` is a, {b,c[0]}. */
function pathSteps(path: string): string[] {
  return path.match(/\{[^}]*\}|\[[^\]]*\]|[^.[\]{}]+/g) ?? [];
}

/** A value as text: strings, numbers and booleans as themselves, objects and lists as JSON. */
function asText(found: unknown): string[] {
  if (found === null || found === undefined) return [];
  if (typeof found === "string" || typeof found === "number" || typeof found === "boolean") return [String(found)];
  return [JSON.stringify(found)];
}

/** The texts at `steps` under `node`: `[n]` (negative from the end) and `[*]` index lists, `*` every member. */
function textsAt(node: unknown, steps: string[]): string[] {
  const [step, ...rest] = steps;
  if (step === undefined) return asText(node);
  if (step.startsWith("[")) {
    if (!Array.isArray(node)) return [];
    const inner = step.slice(1, -1).trim();
    if (inner === "*") return node.flatMap((element) => textsAt(element, rest));
    const at = Number(inner);
    if (!Number.isInteger(at)) return [];
    const element: unknown = node[at < 0 ? node.length + at : at];
    return element === undefined ? [] : textsAt(element, rest);
  }
  if (step.startsWith("{")) {
    // Several paths from here, each followed by the rest (LangGraph's `{a,b}`).
    return step
      .slice(1, -1)
      .split(",")
      .map((alternative) => alternative.trim())
      .filter((alternative) => alternative !== "")
      .flatMap((alternative) => textsAt(node, [...pathSteps(alternative), ...rest]));
  }
  if (typeof node !== "object" || node === null) return [];
  if (step === "*") return Object.values(node).flatMap((member) => textsAt(member, rest));
  return Object.hasOwn(node, step) ? textsAt((node as Record<string, unknown>)[step], rest) : [];
}

/**
 * The texts of a value at the given paths (`$` is the whole value as JSON),
 * each named by its path (and its position when a path yields several,
 * `tags[*]` say).
 */
export function textsToEmbed(value: JsonObject, fields: string[]): { field: string; text: string }[] {
  return [...new Set(fields)].flatMap((path) => {
    // The whole value as indented JSON, the text LangGraph's stores embed for "$".
    const texts = path === "$" ? [JSON.stringify(value, null, 2)] : textsAt(value, pathSteps(path.startsWith("$.") ? path.slice(2) : path));
    return texts.map((text, i) => ({ field: texts.length === 1 ? path : `${path}#${i}`, text }));
  });
}

/** Texts one put may embed at most (one provider call each batch; more is a 422). */
export const MAX_TEXTS_PER_PUT = 1_000;

/** Refuses a put whose fields find more than MAX_TEXTS_PER_PUT texts, naming the field that finds the most. */
function checkTextCount(texts: { field: string; text: string }[]): void {
  if (texts.length <= MAX_TEXTS_PER_PUT) return;
  const perField = new Map<string, number>();
  for (const { field } of texts) {
    const path = field.replace(/#\d+$/, "");
    perField.set(path, (perField.get(path) ?? 0) + 1);
  }
  const [field, count] = [...perField].sort((a, b) => b[1] - a[1])[0]!;
  throw invalid(
    `This put would embed ${texts.length} texts, more than the ${MAX_TEXTS_PER_PUT} one put may embed; the field '${field}' alone finds ${count}. Index fewer fields (index: [...]) or put fewer values under '${field}'.`,
  );
}

/** The embeddings of an item's texts at `fields`. */
export async function embedItem(index: StoreIndex, value: JsonObject, fields: string[]): Promise<StoreVector[]> {
  const texts = textsToEmbed(value, fields);
  checkTextCount(texts);
  const vectors = await index.embedDocuments(texts.map((t) => t.text));
  return texts.map(({ field }, i) => ({ field, vector: vectors[i]! }));
}

/** langgraph.json's `store` section, as src/config.ts validated it. */
export interface ProjectStoreSection {
  index?: { embed: string; dims: number; fields?: string[] | null | undefined } | null | undefined;
  ttl?: { refresh_on_read?: boolean | null | undefined; default_ttl?: number | null | undefined; sweep_interval_minutes?: number | null | undefined } | null | undefined;
}

/** The TTL settings a `store` section asks for, with Baton's defaults for what it leaves out. */
export function storeTtlSettings(section: ProjectStoreSection | null | undefined): StoreTtlSettings {
  const ttl = section?.ttl;
  return {
    refreshOnRead: ttl?.refresh_on_read ?? DEFAULT_STORE_TTL.refreshOnRead,
    defaultTtlMinutes: ttl?.default_ttl ?? DEFAULT_STORE_TTL.defaultTtlMinutes,
    sweepIntervalMinutes: ttl?.sweep_interval_minutes ?? DEFAULT_STORE_TTL.sweepIntervalMinutes,
  };
}

/** The index a `store` section configures (loaded), or undefined. */
export async function storeIndexFrom(baseDir: string, section: ProjectStoreSection | null | undefined): Promise<StoreIndex | undefined> {
  const index = section?.index;
  if (index === null || index === undefined) return undefined;
  return loadStoreIndex(baseDir, { embed: index.embed, dims: index.dims, fields: index.fields ?? ["$"] });
}

/**
 * Refuses a start whose index cannot work: the project's own embedding
 * function is called once and must return `dims` finite numbers (a remote
 * provider is checked on its first use instead, so a start needs no
 * network), and embeddings already stored must have that length too. A
 * probe that throws (the function may call a service that is down for a
 * moment) does not refuse the start: the answer is a warning to log.
 */
export async function checkStoreIndex(index: StoreIndex, storedDims: number | null): Promise<{ warning: string } | undefined> {
  let warning: { warning: string } | undefined;
  if (isLocalEmbed(index.embed)) {
    try {
      await index.embedQuery("Baton checks the embedding's dimensions");
    } catch (error) {
      // A wrong answer (dims, shape, non-finite numbers) is the configuration's fault: refused.
      if (error instanceof BatonError && error.code === ErrorCode.badGateway) throw configError(error.message);
      warning = { warning: `the probe of ${index.embed} failed (${(error as Error).message.split("\n")[0]}); its dimensions are checked on first use` };
    }
  }
  if (storedDims !== null && storedDims !== index.dims) {
    throw configError(
      `the store holds embeddings of ${storedDims} dimensions, but store.index.dims is ${index.dims}. Use the embedding function they were made with, or delete and put the items again under the new one.`,
    );
  }
  return warning;
}
