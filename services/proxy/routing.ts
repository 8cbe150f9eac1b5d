import { readFileSync } from "node:fs";
import { parse } from "yaml";
import { ConfigError, type Env } from "../kit/config.js";

/** The two wire formats the proxy speaks. */
export type Api = "openai" | "anthropic";

/** An upstream: where requests go and the key they carry. The key never leaves the process. */
export interface Provider {
  name: string;
  api: Api;
  /** As the provider's SDK takes it: OpenAI's includes `/v1`, Anthropic's does not. */
  baseUrl: URL;
  apiKey: string | undefined;
}

/** Where a model name goes: the first target, then the fallbacks in order. */
export interface ModelRoute {
  model: string;
  api: Api;
  targets: { provider: Provider; model: string }[];
}

export interface Routing {
  providers: Provider[];
  /** Model names configured in the routes file. */
  models: ModelRoute[];
  /** Where a request for `model` in `api` goes; undefined when nothing serves it. */
  resolve(api: Api, model: string): ModelRoute | undefined;
}

/**
 * Builds the routing table from the environment (one provider per API) and,
 * when AIRLOCK_ROUTES_FILE is set, from that YAML file:
 *
 *   providers:
 *     - name: azure-east
 *       api: openai                       # wire format: openai or anthropic
 *       base_url: https://example.openai.azure.com/openai/v1
 *       api_key_env: AZURE_EAST_KEY       # or api_key_file: /run/secrets/azure-east
 *   models:
 *     - name: gpt-4o                      # what clients ask for (an alias is fine)
 *       api: openai
 *       targets:                          # in order: first, then fallbacks
 *         - { provider: azure-east, model: gpt-4o-2024-11-20 }
 *         - { provider: openai, model: gpt-4o }
 *
 * A model not named in the file goes to the provider named like its API
 * (`openai`, `anthropic`) under its own name.
 */
export function readRouting(env: Env): Routing {
  const providers: Provider[] = [
    envProvider(env, "openai", "https://api.openai.com/v1"),
    envProvider(env, "anthropic", "https://api.anthropic.com"),
  ];
  const models: ModelRoute[] = [];
  const file = env.AIRLOCK_ROUTES_FILE?.trim();
  if (file) {
    const fromFile = readRoutesFile(file, env);
    for (const p of fromFile.providers) {
      const index = providers.findIndex((q) => q.name === p.name);
      if (index >= 0) providers[index] = p;
      else providers.push(p);
    }
    models.push(...routesOf(fromFile.models, providers, file));
  }
  const byName = new Map(models.map((m) => [`${m.api} ${m.model}`, m]));
  return {
    providers,
    models,
    resolve(api, model) {
      const configured = byName.get(`${api} ${model}`);
      if (configured) return configured;
      const provider = providers.find((p) => p.name === api && p.api === api);
      return provider && { model, api, targets: [{ provider, model }] };
    },
  };
}

function envProvider(env: Env, name: Api, defaultUrl: string): Provider {
  const variable = `AIRLOCK_${name.toUpperCase()}_BASE_URL`;
  const text = env[variable]?.trim() || defaultUrl;
  return {
    name,
    api: name,
    baseUrl: parseBaseUrl(text, variable),
    apiKey: env[`AIRLOCK_${name.toUpperCase()}_API_KEY`]?.trim() || undefined,
  };
}

function parseBaseUrl(text: string, where: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new ConfigError(`${where}=${JSON.stringify(text)}: expected an http(s) URL`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:")
    throw new ConfigError(`${where}=${JSON.stringify(text)}: expected an http(s) URL`);
  if (!url.pathname.endsWith("/")) url.pathname += "/";
  return url;
}

interface RoutesFile {
  providers: Provider[];
  models: { name: string; api: Api; targets: { provider: string; model: string }[] }[];
}

function readRoutesFile(file: string, env: Env): RoutesFile {
  let doc: unknown;
  try {
    doc = parse(readFileSync(file, "utf8"));
  } catch (err) {
    throw new ConfigError(`AIRLOCK_ROUTES_FILE=${file}: ${(err as Error).message.split("\n")[0]}`);
  }
  const bad = (what: string) => new ConfigError(`AIRLOCK_ROUTES_FILE=${file}: ${what}`);
  const root = (doc ?? {}) as { providers?: unknown; models?: unknown };
  const providers = (Array.isArray(root.providers) ? root.providers : []).map(
    (raw: Record<string, unknown>, i: number) => {
      const at = `providers[${i}]`;
      if (typeof raw.name !== "string" || !/^[a-z0-9][a-z0-9-]{0,62}$/.test(raw.name))
        throw bad(`${at}.name: lowercase letters, digits and dashes`);
      if (raw.api !== "openai" && raw.api !== "anthropic")
        throw bad(`${at}.api: openai or anthropic`);
      if (typeof raw.base_url !== "string") throw bad(`${at}.base_url: required`);
      let apiKey: string | undefined;
      if (typeof raw.api_key_env === "string") {
        apiKey = env[raw.api_key_env]?.trim();
        if (!apiKey) throw bad(`${at}.api_key_env: ${raw.api_key_env} is not set`);
      } else if (typeof raw.api_key_file === "string") {
        try {
          apiKey = readFileSync(raw.api_key_file, "utf8").trim();
        } catch (err) {
          throw bad(
            `${at}.api_key_file: cannot read ${raw.api_key_file} (${(err as NodeJS.ErrnoException).code})`,
          );
        }
      } else if ("api_key" in raw) {
        throw bad(
          `${at}: put the key in an environment variable (api_key_env) or a file (api_key_file), not in the routes file`,
        );
      }
      return {
        name: raw.name,
        api: raw.api,
        baseUrl: parseBaseUrl(raw.base_url, `${file}: ${at}.base_url`),
        apiKey,
      } satisfies Provider;
    },
  );
  const models = (Array.isArray(root.models) ? root.models : []).map(
    (raw: Record<string, unknown>, i: number) => {
      const at = `models[${i}]`;
      if (typeof raw.name !== "string" || raw.name === "") throw bad(`${at}.name: required`);
      if (raw.api !== "openai" && raw.api !== "anthropic")
        throw bad(`${at}.api: openai or anthropic`);
      if (!Array.isArray(raw.targets) || raw.targets.length === 0)
        throw bad(`${at}.targets: at least one`);
      const targets = raw.targets.map((t: Record<string, unknown>, j: number) => {
        if (typeof t.provider !== "string" || typeof t.model !== "string")
          throw bad(`${at}.targets[${j}]: provider and model`);
        return { provider: t.provider, model: t.model };
      });
      return { name: raw.name, api: raw.api as Api, targets };
    },
  );
  return { providers, models };
}

function routesOf(models: RoutesFile["models"], providers: Provider[], file: string): ModelRoute[] {
  return models.map((m) => ({
    model: m.name,
    api: m.api,
    targets: m.targets.map((t) => {
      const provider = providers.find((p) => p.name === t.provider);
      if (!provider)
        throw new ConfigError(
          `AIRLOCK_ROUTES_FILE=${file}: model ${m.name}: no provider ${t.provider}`,
        );
      if (provider.api !== m.api)
        throw new ConfigError(
          `AIRLOCK_ROUTES_FILE=${file}: model ${m.name} (${m.api}) cannot go to ${t.provider} (${provider.api})`,
        );
      return { provider, model: t.model };
    }),
  }));
}
