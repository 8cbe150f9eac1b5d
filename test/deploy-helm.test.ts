import test from "ava";
import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { Ajv } from "ajv";
import { ConfigMap, Secret, Service } from "kubernetes-models/v1";
import { Deployment } from "kubernetes-models/apps/v1";
import { NetworkPolicy, Ingress } from "kubernetes-models/networking.k8s.io/v1";
import { PodDisruptionBudget } from "kubernetes-models/policy/v1";
import { readCompose, root } from "./support/deploy.js";
import { chartValues, renderChart, type Rendered } from "./support/helm.js";

const chart = join(root, "deploy", "helm", "airlock");
const run = promisify(execFile);
const secrets = {
  serviceSecret: "s".repeat(44),
  databaseUrl: "postgres://airlock:pw@db.internal:5432/airlock",
  redisUrl: "redis://redis.internal:6379",
};
const models: Record<string, new (o: never) => { validate(): void }> = {
  "v1/ConfigMap": ConfigMap,
  "v1/Secret": Secret,
  "v1/Service": Service,
  "apps/v1/Deployment": Deployment,
  "networking.k8s.io/v1/NetworkPolicy": NetworkPolicy,
  "networking.k8s.io/v1/Ingress": Ingress,
  "policy/v1/PodDisruptionBudget": PodDisruptionBudget,
};

/** Every rendered object checked against the Kubernetes schema of its kind. */
function validateAll(
  t: { deepEqual: (a: unknown, b: unknown, m?: string) => void },
  objects: Rendered[],
) {
  for (const { template, object } of objects) {
    const Model = models[`${object.apiVersion}/${object.kind}`];
    let problem = Model ? "" : `no schema for ${object.apiVersion} ${object.kind}`;
    try {
      new Model!(object as never).validate();
    } catch (err) {
      problem ||= (err as Error).message;
    }
    t.deepEqual(problem, "", `${template}: ${object.kind} ${object.metadata.name}`);
  }
}

const kinds = (objects: Rendered[]) =>
  objects.map((o) => `${o.object.kind}/${o.object.metadata.name}`).sort();

test("yamllint passes on the chart's Chart.yaml and values.yaml, and on the compose file", async (t) => {
  const files = [
    join(chart, "Chart.yaml"),
    join(chart, "values.yaml"),
    join(root, "deploy", "compose", "compose.yaml"),
  ];
  try {
    await run("yamllint", ["-s", "-c", join(root, "deploy", "yamllint.yaml"), ...files]);
    t.pass();
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stdout?: string };
    t.fail(
      e.code === "ENOENT"
        ? "yamllint is not installed: apt-get install yamllint (.ci/run installs it)"
        : (e.stdout ?? e.message),
    );
  }
});

test("values.schema.json accepts the defaults with a secret, rejects a missing service secret and bad replica counts", async (t) => {
  const schema = JSON.parse(await readFile(join(chart, "values.schema.json"), "utf8")) as object;
  const validate = new Ajv({ allErrors: true, strict: false }).compile(schema);
  t.true(validate(await chartValues(chart, { secrets })), JSON.stringify(validate.errors));
  t.true(validate(await chartValues(chart, { secrets: { existingSecret: "airlock-prod" } })));

  t.false(validate(await chartValues(chart)), "values.yaml alone: no service secret");
  t.false(
    validate(await chartValues(chart, { secrets: { ...secrets, serviceSecret: "" } })),
    "empty service secret",
  );
  t.false(
    validate(await chartValues(chart, { secrets: { ...secrets, serviceSecret: "too-short" } })),
    "service secret under 32 characters",
  );
  for (const replicas of [0, -1, 1.5, "2", 1000])
    t.false(
      validate(await chartValues(chart, { secrets, services: { proxy: { replicas } } })),
      `replicas ${JSON.stringify(replicas)}`,
    );
  t.false(
    validate(
      await chartValues(chart, {
        secrets,
        services: { proxy: { replicas: 2 } },
        proxy: { spool: { existingClaim: "spool" } },
      }),
    ),
    "one ReadWriteOnce spool claim for two proxies",
  );
  t.false(
    validate(await chartValues(chart, { secrets, services: { billing: { replicas: 1 } } })),
    "a service Airlock does not have",
  );
  for (const retention of [{ content: "30" }, { metadata: "1y" }, { interval: "hourly" }])
    t.false(
      validate(await chartValues(chart, { secrets, retention })),
      `retention ${JSON.stringify(retention)}`,
    );
});

test("the chart renders valid Kubernetes objects for the default values", async (t) => {
  const objects = await renderChart(chart, await chartValues(chart, { secrets }));
  validateAll(t, objects);
  const services = ["audit", "identity", "policy", "proxy", "retention"];
  t.deepEqual(kinds(objects), [
    "ConfigMap/airlock-airlock-config",
    ...services.map((s) => `Deployment/airlock-${s}`),
    ...services.map((s) => `NetworkPolicy/airlock-${s}`),
    "Secret/airlock-airlock",
    ...services.map((s) => `Service/airlock-${s}`),
  ]);
  const deployments = objects.filter((o) => o.object.kind === "Deployment").map((o) => o.object);
  for (const d of deployments) {
    const c = (d as unknown as Deployment).spec!.template.spec!.containers[0]!;
    t.is(c.livenessProbe?.httpGet?.path, "/healthz", `${d.metadata.name} liveness`);
    t.is(c.readinessProbe?.httpGet?.path, "/readyz", `${d.metadata.name} readiness`);
    t.true((d as unknown as Deployment).spec!.template.spec!.securityContext!.runAsNonRoot!);
  }
  // One source of truth: each container gets every variable compose gives that service.
  const compose = await readCompose();
  for (const d of deployments) {
    const name = d.metadata.name.replace(/^airlock-/, "");
    const env = new Set(
      (d as unknown as Deployment).spec!.template.spec!.containers[0]!.env!.map((e) => e.name),
    );
    const missing = Object.keys(compose.services[name]!.environment ?? {}).filter(
      (v) => !env.has(v),
    );
    t.deepEqual(missing, [], `${name}: variables compose sets that the chart does not`);
  }
  // Each AIRLOCK_<SERVICE>_URL names that service's Service, and every service is named.
  for (const d of deployments) {
    const env = (d as unknown as Deployment).spec!.template.spec!.containers[0]!.env!;
    const peers = env
      .filter((e) => /^AIRLOCK_[A-Z]+_URL$/.test(e.name))
      .map((e) => `${e.name}=${e.value}`)
      .sort();
    t.deepEqual(
      peers,
      services.map((s) => `AIRLOCK_${s.toUpperCase()}_URL=http://airlock-${s}:4001`),
      `${d.metadata.name} peer URLs`,
    );
  }
  // Only the proxy may reach the internet.
  for (const { object } of objects.filter((o) => o.object.kind === "NetworkPolicy")) {
    const open = JSON.stringify(object).includes("0.0.0.0/0");
    t.is(open, object.metadata.name === "airlock-proxy", `${object.metadata.name} egress`);
  }
});

test("the chart with replicas, an existing secret, an ingress, routes and datastore pods", async (t) => {
  const objects = await renderChart(
    chart,
    await chartValues(chart, {
      secrets: { existingSecret: "airlock-prod" },
      services: { proxy: { replicas: 3 }, audit: { replicas: 2 }, retention: { replicas: 2 } },
      ingress: {
        enabled: true,
        className: "nginx",
        host: "llm.acme.example",
        tlsSecret: "llm-tls",
      },
      config: { routes: "providers: []\nmodels: []\n", policyBundle: "p, role:x, y, z, allow\n" },
      audit: { signingKeySecret: "audit-key" },
      retention: { content: "90d", interval: "0s" },
      networkPolicy: { datastoreCidrs: ["10.0.5.0/24"], datastorePodLabels: { app: "postgres" } },
    }),
  );
  validateAll(t, objects);
  const names = kinds(objects);
  t.false(
    names.some((n) => n.startsWith("Secret/")),
    "an existing secret is used, not created",
  );
  t.true(names.includes("PodDisruptionBudget/airlock-proxy"));
  t.true(names.includes("PodDisruptionBudget/airlock-audit"));
  t.true(names.includes("PodDisruptionBudget/airlock-retention"));
  t.false(names.includes("PodDisruptionBudget/airlock-identity"), "one replica: no PDB");
  t.true(names.includes("Ingress/airlock-proxy"));
  t.true(names.includes("NetworkPolicy/airlock-airlock-datastores"));
  const proxy = objects.find(
    (o) => o.object.metadata.name === "airlock-proxy" && o.object.kind === "Deployment",
  )!.object as unknown as Deployment;
  t.is(proxy.spec!.replicas, 3);
  const env = proxy.spec!.template.spec!.containers[0]!.env!;
  t.is(env.find((e) => e.name === "AIRLOCK_ROUTES_FILE")?.value, "/etc/airlock/config/routes.yaml");
  t.is(
    env.find((e) => e.name === "AIRLOCK_SERVICE_SECRET")?.valueFrom?.secretKeyRef?.name,
    "airlock-prod",
  );
  const retention = objects.find(
    (o) => o.object.metadata.name === "airlock-retention" && o.object.kind === "Deployment",
  )!.object as unknown as Deployment;
  const retentionEnv = Object.fromEntries(
    retention
      .spec!.template.spec!.containers[0]!.env!.filter((e) =>
        e.name.startsWith("AIRLOCK_RETENTION_"),
      )
      .map((e) => [e.name, e.value]),
  );
  t.deepEqual(retentionEnv, {
    AIRLOCK_RETENTION_URL: "http://airlock-retention:4001",
    AIRLOCK_RETENTION_CONTENT: "90d",
    AIRLOCK_RETENTION_METADATA: "400d",
    AIRLOCK_RETENTION_RECEIPTS: "forever",
    AIRLOCK_RETENTION_INTERVAL: "0s",
    AIRLOCK_RETENTION_TOKEN_GRACE: "7d",
  });
  // Only audit is given the schema owner's connection (and only from the secret).
  const ownerEnv = objects
    .filter((o) => o.object.kind === "Deployment")
    .flatMap((o) =>
      (o.object as unknown as Deployment)
        .spec!.template.spec!.containers[0]!.env!.filter(
          (e) => e.name === "AIRLOCK_AUDIT_OWNER_DATABASE_URL",
        )
        .map((e) => [o.object.metadata.name, e.valueFrom?.secretKeyRef?.key]),
    );
  t.deepEqual(ownerEnv, [["airlock-audit", "audit-owner-database-url"]]);
  const config = objects.find((o) => o.object.kind === "ConfigMap")!.object as unknown as ConfigMap;
  t.is(
    config.data!["routes.yaml"],
    "providers: []\nmodels: []\n",
    "multi-line values survive quoting",
  );
});
