import { pino, type DestinationStream, type Logger } from "pino";

/**
 * Field names whose values never reach a log line: credentials of every
 * kind, and prompt or response text. pino replaces them with "[redacted]"
 * at these paths and one level down (`*.name`) and in request headers.
 */
export const redactedFields = [
  "token",
  "tokens",
  "secret",
  "password",
  "authorization",
  "apiKey",
  "api_key",
  "x-api-key",
  "idToken",
  "id_token",
  "serviceSecret",
  "prompt",
  "messages",
  "content",
  "input",
  "output",
  "text",
] as const;

const redactPaths = [
  ...redactedFields.map((f) => `["${f}"]`),
  ...redactedFields.map((f) => `*["${f}"]`),
  ...redactedFields.map((f) => `*.headers["${f}"]`),
];

export type { Logger };

export interface LoggerOptions {
  service: string;
  level?: string;
  /** Where lines go; stdout by default. Tests pass a capturing stream. */
  destination?: DestinationStream;
}

/** The JSON logger every service uses. */
export function createLogger(options: LoggerOptions): Logger {
  return pino(
    {
      level: options.level ?? "info",
      base: { service: options.service },
      redact: { paths: redactPaths, censor: "[redacted]" },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    options.destination,
  );
}
