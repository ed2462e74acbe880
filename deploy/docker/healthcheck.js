// The image's HEALTHCHECK (deploy/Dockerfile): GET /ok on this container's
// Baton port, exit 0 when it answers 200, 1 otherwise. Plain JavaScript run by
// node, so a check costs no TypeScript loading and needs no curl in the image.
import { get } from "node:http";
import { argv, env, exit } from "node:process";
import { pathToFileURL } from "node:url";

/**
 * The port Baton listens on in a container with this environment, by
 * Baton's own rule: BATON_PORT, else PORT, else 8124 for a worker
 * (BATON_ROLE=worker) and 8123 otherwise. The compose file sets the role in
 * the environment for this reason; a `--port` on the command line must be
 * given to this script as its argument.
 */
export function healthcheckPort(environment, given) {
  return Number(given || environment.BATON_PORT || environment.PORT || (environment.BATON_ROLE === "worker" ? 8124 : 8123));
}

if (argv[1] !== undefined && import.meta.url === pathToFileURL(argv[1]).href) {
  // /ok answers any Host and is never behind authentication.
  const request = get({ host: "127.0.0.1", port: healthcheckPort(env, argv[2]), path: "/ok", timeout: 2_000 }, (response) => {
    response.resume();
    exit(response.statusCode === 200 ? 0 : 1);
  });
  request.on("timeout", () => request.destroy());
  request.on("error", () => exit(1));
}
