import type { Api } from "./routing.js";

/** An error as the provider would send it, so SDKs raise their usual exception types. */
export interface ProviderError {
  status: number;
  body: string;
}

const anthropicTypes: Record<number, string> = {
  400: "invalid_request_error",
  401: "authentication_error",
  403: "permission_error",
  404: "not_found_error",
  413: "request_too_large",
  415: "invalid_request_error",
  429: "rate_limit_error",
  500: "api_error",
  502: "api_error",
  503: "overloaded_error",
  529: "overloaded_error",
};

const openaiTypes: Record<number, string> = {
  400: "invalid_request_error",
  401: "invalid_request_error",
  403: "permission_denied",
  404: "invalid_request_error",
  413: "invalid_request_error",
  415: "invalid_request_error",
  429: "rate_limit_exceeded",
  500: "server_error",
  502: "server_error",
  503: "server_error",
};

export function providerError(
  api: Api,
  status: number,
  message: string,
  code?: string,
): ProviderError {
  if (api === "anthropic") {
    return {
      status,
      body: JSON.stringify({
        type: "error",
        error: { type: anthropicTypes[status] ?? "api_error", message },
      }),
    };
  }
  return {
    status,
    body: JSON.stringify({
      error: {
        message,
        type: openaiTypes[status] ?? "server_error",
        param: null,
        code: code ?? null,
      },
    }),
  };
}

/** The event that ends a stream the upstream broke after the client got its first bytes. */
export function streamErrorEvent(api: Api, endpoint: string, message: string): string {
  if (api === "anthropic") {
    return `event: error\ndata: ${JSON.stringify({ type: "error", error: { type: "api_error", message } })}\n\n`;
  }
  if (endpoint === "responses") {
    return `event: error\ndata: ${JSON.stringify({ type: "error", code: "server_error", message, param: null })}\n\n`;
  }
  return `data: ${JSON.stringify({ error: { message, type: "server_error", param: null, code: null } })}\n\n`;
}
