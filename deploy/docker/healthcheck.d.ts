/** Types of healthcheck.js, for the tests that import its port rule. */
export declare function healthcheckPort(environment: Record<string, string | undefined>, given?: string): number;
