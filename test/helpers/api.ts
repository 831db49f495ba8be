/**
 * A small Engine API client for tests: JSON requests over the daemon's Unix socket, answering
 * the status and the parsed body (or its text when it is not JSON).
 */
export interface ApiAnswer {
  status: number;
  text: string;
  // biome-ignore lint: tests read arbitrary JSON
  json: any;
}

/** `call(method, path, body)` against the daemon listening on `socket`. */
export function apiClient(socket: string) {
  return async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<ApiAnswer> => {
    const init: RequestInit & { unix: string } = { unix: socket, method, headers: { ...(body !== undefined ? { "content-type": "application/json" } : {}), ...headers } };
    if (body !== undefined) init.body = typeof body === "string" || body instanceof Uint8Array ? (body as string) : JSON.stringify(body);
    const r = await fetch(`http://localhost${path}`, init);
    const text = await r.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: r.status, text, json };
  };
}
