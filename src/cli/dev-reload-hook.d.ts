// Types of ./dev-reload-hook.js (plain JavaScript: a module resolution hook).
import type { MessagePort } from "node:worker_threads";

export declare function initialize(data: { port: MessagePort }): void;
export declare function resolve(...args: unknown[]): Promise<unknown>;
export declare function resolveSync(...args: unknown[]): unknown;
