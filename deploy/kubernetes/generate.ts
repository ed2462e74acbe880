/**
 * Baton's Kubernetes manifests (deploy/kubernetes/*.yaml), written from typed
 * objects: kubernetes-models for the Kubernetes kinds and
 * @kubernetes-models/keda for KEDA's, whose types come from the official
 * OpenAPI schemas (so a misspelt field is a type error) and whose
 * `.validate()` checks an object against them.
 *
 *   npm run deploy:manifests     # rewrites deploy/kubernetes/*.yaml
 *
 * test/deploy/kubernetes.test.ts regenerates them and fails when the
 * committed files differ, validates every object, runs the KEDA query on a
 * migrated database and starts each container's command with its
 * configuration. docs/deploy.md explains the numbers chosen here.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { ScaledObject, TriggerAuthentication } from "@kubernetes-models/keda/keda.sh/v1alpha1";
import { Deployment } from "kubernetes-models/apps/v1";
import { HorizontalPodAutoscaler } from "kubernetes-models/autoscaling/v2";
import { Job } from "kubernetes-models/batch/v1";
import { PodDisruptionBudget } from "kubernetes-models/policy/v1";
import { ConfigMap, Service, ServiceAccount, type IContainer, type IPodSpec, type IProbe } from "kubernetes-models/v1";
import { stringify } from "yaml";

/** What every generated object offers (each kubernetes-models class does). */
export interface Manifest {
  apiVersion: string;
  kind: string;
  metadata?: { name?: string };
  validate(): void;
  toJSON(): unknown;
}

/** Replace with your registry's image, built by deploy/Dockerfile with your project. */
export const IMAGE = "registry.example.com/my-agent:1.0.0";

export const NAME = "baton";
export const CONFIG_MAP = `${NAME}-config`;
/** Created by you (docs/deploy.md), never by these files: they would overwrite it with placeholders. */
export const SECRET = `${NAME}-secrets`;
/** The keys the Secret must hold. */
export const SECRET_KEYS = ["DATABASE_URL", "REDIS_URL", "BATON_API_KEYS"] as const;

/** The API's port and a worker's health port: Baton's defaults for role api and role worker. */
export const API_PORT = 8123;
export const WORKER_HEALTH_PORT = 8124;

/** How long running runs may finish on SIGTERM before being handed back (BATON_SHUTDOWN_GRACE_MS). */
export const SHUTDOWN_GRACE_MS = 30_000;
/** API pods wait this long before SIGTERM so that endpoints drop them first (no request lands on a closed listener). */
export const API_PRE_STOP_SECONDS = 5;
/** After the drain, handing the rest back and closing connections: a few statements, well under this. */
const TERMINATION_MARGIN_SECONDS = 15;
export const API_TERMINATION_GRACE_SECONDS = API_PRE_STOP_SECONDS + SHUTDOWN_GRACE_MS / 1000 + TERMINATION_MARGIN_SECONDS;
export const WORKER_TERMINATION_GRACE_SECONDS = SHUTDOWN_GRACE_MS / 1000 + TERMINATION_MARGIN_SECONDS;

/** Runs one worker pod executes at once (BATON_WORKERS), sized with its CPU and memory requests below. */
export const WORKER_SLOTS = 100;
/** KEDA keeps this many runs in flight per worker pod on average: three quarters of its slots, so a burst fits while new pods start. */
export const RUNS_PER_WORKER_TARGET = 75;

/**
 * The load the worker fleet must carry: runs executing now plus runs due
 * now (status 'pending', available_at_ms reached; delayed runs are not due).
 * Running runs count too: a pending-only count falls to zero as soon as the
 * workers keep up, and KEDA would then remove workers whose runs are still
 * going (they drain and hand them back, which queues them again). Each part
 * is an index-only scan of a partial index of the runs table (running runs;
 * runs_pending of migration 0001, bounded by the time: `now()`, which KEDA's
 * one-statement transactions make the statement's time, is usable as an
 * index condition, where `clock_timestamp()` is not). Times are epoch
 * milliseconds, as the claim compares them.
 */
export const IN_FLIGHT_RUNS_QUERY = [
  "SELECT (SELECT count(*) FROM runs WHERE status = 'running')",
  "     + (SELECT count(*) FROM runs WHERE status = 'pending'",
  "          AND available_at_ms <= (extract(epoch FROM now()) * 1000)::bigint)",
].join("\n");

/** Shared configuration of every Baton container (docs/configuration.md). The Secret adds the connection strings and keys. */
export const CONFIG: Record<string, string> = {
  BATON_HOST: "0.0.0.0",
  // The migrate Job migrates; Deployments stay unready until it has (their /ready checks the schema version).
  BATON_MIGRATE: "false",
  BATON_LOG_LEVEL: "info",
  BATON_SHUTDOWN_GRACE_MS: String(SHUTDOWN_GRACE_MS),
  BATON_WORKERS: String(WORKER_SLOTS),
  // Per process: (API max + worker max) × (10 + 1) connections must stay under Postgres's max_connections.
  BATON_POOL_SIZE: "10",
};

const labels = (component: string) => ({
  "app.kubernetes.io/name": NAME,
  "app.kubernetes.io/component": component,
});

const httpProbe = (path: string, port: string, periodSeconds: number, failureThreshold: number): IProbe => ({
  httpGet: { path, port },
  periodSeconds,
  timeoutSeconds: 3,
  failureThreshold,
});

/** One Baton container: the image's entrypoint (`baton`) with `args`, configuration from the ConfigMap and the Secret. */
function batonContainer(name: string, args: string[], resources: IContainer["resources"], port?: { name: string; containerPort: number }): IContainer {
  return {
    name,
    image: IMAGE,
    imagePullPolicy: "IfNotPresent",
    args,
    envFrom: [{ configMapRef: { name: CONFIG_MAP } }, { secretRef: { name: SECRET } }],
    ...(port === undefined
      ? {}
      : {
          ports: [{ name: port.name, containerPort: port.containerPort, protocol: "TCP" as const }],
          // Loading the project (and bundling its UI) may take a while; liveness waits for it.
          startupProbe: httpProbe("/ok", port.name, 2, 60),
          livenessProbe: httpProbe("/ok", port.name, 10, 3),
          // 503 while the database, Redis or the schema is not right, and at once on SIGTERM.
          readinessProbe: httpProbe("/ready", port.name, 5, 2),
        }),
    resources,
    securityContext: {
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ["ALL"] },
    },
    // tsx caches compiled TypeScript in the temporary folder.
    volumeMounts: [{ name: "tmp", mountPath: "/tmp" }],
  };
}

function podSpec(container: IContainer, extra: Partial<IPodSpec> = {}): IPodSpec {
  return {
    serviceAccountName: NAME,
    automountServiceAccountToken: false,
    securityContext: {
      runAsNonRoot: true,
      runAsUser: 1000,
      runAsGroup: 1000,
      seccompProfile: { type: "RuntimeDefault" },
    },
    containers: [container],
    volumes: [{ name: "tmp", emptyDir: {} }],
    ...extra,
  };
}

const spreadOverNodes = (component: string): IPodSpec["topologySpreadConstraints"] => [
  { maxSkew: 1, topologyKey: "kubernetes.io/hostname", whenUnsatisfiable: "ScheduleAnyway", labelSelector: { matchLabels: labels(component) } },
];

/** Prometheus' usual scrape annotations: /metrics is served on the container's own port (no metricsPort). */
const scrape = (port: number) => ({ "prometheus.io/scrape": "true", "prometheus.io/port": String(port), "prometheus.io/path": "/metrics" });

function config(): Manifest[] {
  return [
    new ServiceAccount({ metadata: { name: NAME, labels: labels("config") }, automountServiceAccountToken: false }),
    new ConfigMap({ metadata: { name: CONFIG_MAP, labels: labels("config") }, data: CONFIG }),
  ];
}

function migrateJob(): Manifest[] {
  return [
    new Job({
      metadata: { name: `${NAME}-migrate`, labels: labels("migrate") },
      spec: {
        backoffLimit: 3,
        activeDeadlineSeconds: 600,
        // Removed an hour after it ends, so the next release can apply it again.
        ttlSecondsAfterFinished: 3600,
        template: {
          metadata: { labels: labels("migrate") },
          spec: podSpec(batonContainer("migrate", ["migrate"], { requests: { cpu: "100m", memory: "128Mi" }, limits: { memory: "256Mi" } }), {
            restartPolicy: "Never",
          }),
        },
      },
    }),
  ];
}

function api(): Manifest[] {
  const component = "api";
  return [
    new Deployment({
      metadata: { name: `${NAME}-api`, labels: labels(component) },
      spec: {
        // No replicas: the HPA owns the count (a re-apply would reset it).
        selector: { matchLabels: labels(component) },
        strategy: { type: "RollingUpdate", rollingUpdate: { maxSurge: "25%", maxUnavailable: 0 } },
        template: {
          metadata: { labels: labels(component), annotations: scrape(API_PORT) },
          spec: podSpec(
            {
              ...batonContainer(
                component,
                ["serve", "--role", "api"],
                // No CPU limit: throttling a Node event loop stalls every stream it serves; the HPA scales on the request.
                { requests: { cpu: "500m", memory: "512Mi" }, limits: { memory: "1Gi" } },
                { name: "http", containerPort: API_PORT },
              ),
              lifecycle: { preStop: { exec: { command: ["sleep", String(API_PRE_STOP_SECONDS)] } } },
            },
            { terminationGracePeriodSeconds: API_TERMINATION_GRACE_SECONDS, topologySpreadConstraints: spreadOverNodes(component) },
          ),
        },
      },
    }),
    new Service({
      metadata: { name: NAME, labels: labels(component) },
      spec: { type: "ClusterIP", selector: labels(component), ports: [{ name: "http", port: API_PORT, targetPort: "http", protocol: "TCP" }] },
    }),
    new HorizontalPodAutoscaler({
      metadata: { name: `${NAME}-api`, labels: labels(component) },
      spec: {
        scaleTargetRef: { apiVersion: "apps/v1", kind: "Deployment", name: `${NAME}-api` },
        minReplicas: 2,
        maxReplicas: 10,
        metrics: [{ type: "Resource", resource: { name: "cpu", target: { type: "Utilization", averageUtilization: 70 } } }],
        behavior: { scaleDown: { stabilizationWindowSeconds: 300 } },
      },
    }),
    new PodDisruptionBudget({
      metadata: { name: `${NAME}-api`, labels: labels(component) },
      spec: { minAvailable: 1, selector: { matchLabels: labels(component) }, unhealthyPodEvictionPolicy: "AlwaysAllow" },
    }),
  ];
}

function worker(): Manifest[] {
  const component = "worker";
  return [
    new Deployment({
      metadata: { name: `${NAME}-worker`, labels: labels(component) },
      spec: {
        // No replicas: KEDA owns the count (a re-apply would reset it).
        selector: { matchLabels: labels(component) },
        strategy: { type: "RollingUpdate", rollingUpdate: { maxSurge: "25%", maxUnavailable: 0 } },
        template: {
          metadata: { labels: labels(component), annotations: scrape(WORKER_HEALTH_PORT) },
          spec: podSpec(
            batonContainer(
              component,
              ["serve", "--role", "worker"],
              { requests: { cpu: "1", memory: "1Gi" }, limits: { memory: "2Gi" } },
              { name: "health", containerPort: WORKER_HEALTH_PORT },
            ),
            { terminationGracePeriodSeconds: WORKER_TERMINATION_GRACE_SECONDS, topologySpreadConstraints: spreadOverNodes(component) },
          ),
        },
      },
    }),
    new PodDisruptionBudget({
      metadata: { name: `${NAME}-worker`, labels: labels(component) },
      // A worker evicted drains and hands its runs back: one at a time keeps the fleet's capacity.
      spec: { maxUnavailable: 1, selector: { matchLabels: labels(component) }, unhealthyPodEvictionPolicy: "AlwaysAllow" },
    }),
    new TriggerAuthentication({
      metadata: { name: `${NAME}-postgres`, labels: labels(component) },
      spec: { secretTargetRef: [{ parameter: "connection", name: SECRET, key: "DATABASE_URL" }] },
    }),
    new ScaledObject({
      metadata: { name: `${NAME}-worker`, labels: labels(component) },
      spec: {
        scaleTargetRef: { name: `${NAME}-worker` },
        pollingInterval: 15,
        minReplicaCount: 2,
        maxReplicaCount: 20,
        advanced: {
          horizontalPodAutoscalerConfig: {
            behavior: {
              scaleUp: { stabilizationWindowSeconds: 0, policies: [{ type: "Percent", value: 100, periodSeconds: 30 }] },
              // Removing a worker costs a drain: slowly, one pod a minute, after five quiet minutes.
              scaleDown: { stabilizationWindowSeconds: 300, policies: [{ type: "Pods", value: 1, periodSeconds: 60 }] },
            },
          },
        },
        triggers: [
          {
            type: "postgresql",
            name: "in-flight-runs",
            metadata: { query: IN_FLIGHT_RUNS_QUERY, targetQueryValue: String(RUNS_PER_WORKER_TARGET), activationTargetQueryValue: "0" },
            authenticationRef: { name: `${NAME}-postgres` },
          },
        ],
      },
    }),
  ];
}

/** File name (in deploy/kubernetes/) to objects, in the order `kubectl apply -f deploy/kubernetes/` applies them. */
export function manifests(): Record<string, Manifest[]> {
  return {
    "00-config.yaml": config(),
    "10-migrate-job.yaml": migrateJob(),
    "20-api.yaml": api(),
    "30-worker.yaml": worker(),
  };
}

const HEADER = "# Generated by deploy/kubernetes/generate.ts (npm run deploy:manifests): edit that file, not this one.\n";

/** Each file's text: the objects as YAML documents. */
export function render(): Record<string, string> {
  return Object.fromEntries(
    Object.entries(manifests()).map(([file, objects]) => [file, HEADER + objects.map((object) => stringify(object.toJSON(), { lineWidth: 0 })).join("---\n")]),
  );
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  for (const object of Object.values(manifests()).flat()) object.validate();
  for (const [file, text] of Object.entries(render())) {
    writeFileSync(join(import.meta.dirname, file), text);
    process.stdout.write(`wrote deploy/kubernetes/${file}\n`);
  }
}
