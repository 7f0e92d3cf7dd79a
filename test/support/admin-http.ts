/** Minimal calls to the admin HTTP API for tests that exercise other parts through it. */
export interface AdminEndpoint {
  readonly port: number;
  readonly token: string;
}

export interface AdminResponse<T> {
  readonly status: number;
  readonly body: T;
  readonly text: string;
}

/** One request; the body is parsed as JSON when it is JSON, else left as text. */
export async function adminRequest<T = unknown>(
  admin: AdminEndpoint,
  method: 'GET' | 'DELETE',
  path: string,
): Promise<AdminResponse<T>> {
  const response = await fetch(`http://127.0.0.1:${admin.port}${path}`, {
    method,
    headers: { authorization: `Bearer ${admin.token}` },
  });
  const text = await response.text();
  let body: unknown = text;
  if ((response.headers.get('content-type') ?? '').includes('application/json')) {
    body = JSON.parse(text);
  }
  return { status: response.status, body: body as T, text };
}
