// Types of ./node-lines.js (plain JavaScript, loaded before tsx).
import type { MessagePort } from "node:worker_threads";

export declare const inThreadHooks: boolean;

export interface ResolveHookModule {
  initialize(data: unknown): void;
  resolve(...args: unknown[]): unknown;
  resolveSync(...args: unknown[]): unknown;
}

export declare function addResolveHook(hook: ResolveHookModule, hookURL: URL, data: unknown, transferList?: MessagePort[]): void;

export declare function drive<T>(steps: Generator<[string, string], T, unknown>, context: object, nextResolve: (...args: unknown[]) => unknown): T | Promise<T>;

export declare function nativeModuleMismatch(error: unknown): { problem: string; fix: string } | undefined;
