import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";

const bin = fileURLToPath(new URL("../../bin/airlock.mjs", import.meta.url));

export interface AirlockProcess {
  child: ChildProcess;
  /** The RPC address, from the `airlock serving` log line. */
  url: string;
  /** Every endpoint that line names (`rpc`, and the proxy's `llm`). */
  endpoints: Record<string, string>;
  /** Every line the process wrote to stdout and stderr so far. */
  output: string[];
  /** Resolves with the exit code once the process has ended; -1 when a signal ended it. */
  exited: Promise<number | null>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * Runs `airlock serve …` as its own OS process and waits until it serves.
 * `entry` is the program node runs: the TypeScript CLI by default, or the
 * compiled one from `npm run build`. Listen addresses default to free ports
 * unless `exactEnv`, which gives the process `env` and PATH only (to prove a
 * deployment's own settings suffice).
 */
export async function spawnAirlock(
  args: string[],
  env: Record<string, string>,
  {
    timeoutMs = 30_000,
    entry = bin,
    exactEnv = false,
  }: { timeoutMs?: number; entry?: string; exactEnv?: boolean } = {},
): Promise<AirlockProcess> {
  const child = spawn(process.execPath, [entry, ...args], {
    env: {
      PATH: process.env.PATH ?? "",
      ...(!exactEnv && { AIRLOCK_RPC_ADDR: "127.0.0.1:0", AIRLOCK_HTTP_ADDR: "127.0.0.1:0" }),
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const output: string[] = [];
  const exited = new Promise<number | null>((resolve) =>
    child.once("exit", (code, signal) => resolve(code ?? (signal ? -1 : null))),
  );
  const serving = await new Promise<{ url: string; endpoints: Record<string, string> }>(
    (resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`airlock ${args.join(" ")} did not start:\n${output.join("\n")}`)),
        timeoutMs,
      );
      const onLine = (chunk: Buffer) => {
        for (const line of chunk.toString("utf8").split("\n").filter(Boolean)) {
          output.push(line);
          if (line.includes('"msg":"airlock serving"')) {
            clearTimeout(timer);
            resolve(JSON.parse(line) as { url: string; endpoints: Record<string, string> });
          }
        }
      };
      child.stdout.on("data", onLine);
      child.stderr.on("data", onLine);
      void exited.then((code) => {
        clearTimeout(timer);
        reject(new Error(`airlock ${args.join(" ")} exited with ${code}:\n${output.join("\n")}`));
      });
    },
  );
  return {
    child,
    url: serving.url,
    endpoints: serving.endpoints,
    output,
    exited,
    async stop(signal = "SIGTERM") {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

/** Runs one `airlock` CLI command to completion. */
export function runCli(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [bin, ...args], {
    env: { PATH: process.env.PATH ?? "", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
  child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
  return new Promise((resolve) => child.once("close", (code) => resolve({ code, stdout, stderr })));
}
