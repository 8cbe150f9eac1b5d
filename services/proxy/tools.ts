import type { Endpoint } from "./collect.js";

type Json = Record<string, unknown>;

/** The policy name of a tool offered in a request (`tool:<name>` is what policy checks). */
function toolName(endpoint: Endpoint, tool: Json): string {
  if (endpoint === "chat") return String((tool.function as Json | undefined)?.name ?? "");
  if (endpoint === "responses") {
    if (tool.type === "function") return String(tool.name ?? "");
    if (tool.type === "mcp") return `mcp.${String(tool.server_label ?? "")}`;
    return String(tool.type ?? "");
  }
  return String(tool.name ?? "");
}

/** Names of the tools a request offers, in order. */
export function offeredTools(endpoint: Endpoint, body: Json): string[] {
  return Array.isArray(body.tools)
    ? body.tools.map((t) => toolName(endpoint, (t ?? {}) as Json))
    : [];
}

/**
 * A copy of the request without the tools whose names are in `remove`. A
 * `tool_choice` that named a removed tool, or that is left without tools,
 * goes too: providers refuse a choice of a tool they were not offered.
 */
export function withoutTools(endpoint: Endpoint, body: Json, remove: ReadonlySet<string>): Json {
  const tools = (body.tools as Json[]).filter((t) => !remove.has(toolName(endpoint, t ?? {})));
  const copy: Json = { ...body, tools };
  const choice = body.tool_choice as Json | string | undefined;
  const chosen =
    typeof choice === "object" && choice
      ? String((choice.function as Json | undefined)?.name ?? choice.name ?? "")
      : "";
  if (tools.length === 0) {
    delete copy.tools;
    delete copy.tool_choice;
    if (endpoint === "chat") delete copy.parallel_tool_calls;
  } else if (chosen && remove.has(chosen)) {
    delete copy.tool_choice;
  }
  return copy;
}
