import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { type IncomingMessage, type ServerResponse } from 'node:http';
import { dirname, extname, join, relative, sep } from 'node:path';

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
  '.map': 'application/json',
};

/**
 * The web client's pages may talk to this origin only (its WebSocket included), run only their
 * own scripts, and be framed by no one: a page that holds a user's private key must not load
 * anything it did not ship with.
 */
const SECURITY_HEADERS = {
  'content-security-policy':
    "default-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self'; " +
    "script-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cache-control': 'no-cache',
} as const;

/**
 * Serves the files of one directory as they were when the server started, from memory (the web
 * client is a few hundred KiB): nothing outside that set (`..`, files added later, a path with
 * NUL) can be asked for, a request never touches the file system, and a rebuild while the
 * server runs cannot cut a response short. GET and HEAD only; `/` is `index.html`.
 */
export class StaticFiles {
  readonly #root: string;
  readonly #files: Map<string, { body: Buffer; type: string }>;

  private constructor(root: string, files: Map<string, { body: Buffer; type: string }>) {
    this.#root = root;
    this.#files = files;
  }

  /** The directory's files, or undefined when it does not exist (no web client built). */
  static load(root: string): StaticFiles | undefined {
    if (!existsSync(root) || !statSync(root).isDirectory()) return undefined;
    const files = new Map<string, { body: Buffer; type: string }>();
    const walk = (dir: string): void => {
      for (const entry of readdirSync(dir, { withFileTypes: true })) {
        const path = join(dir, entry.name);
        if (entry.isDirectory()) walk(path);
        else if (entry.isFile()) {
          const type = CONTENT_TYPES[extname(entry.name).toLowerCase()];
          if (type === undefined) continue;
          const url = `/${relative(root, path).split(sep).join('/')}`;
          try {
            files.set(url, { body: readFileSync(path), type });
          } catch {
            // Gone between the listing and the read (a rebuild running): not served.
          }
        }
      }
    };
    walk(root);
    return new StaticFiles(root, files);
  }

  get root(): string {
    return this.#root;
  }

  get count(): number {
    return this.#files.size;
  }

  handle(request: IncomingMessage, response: ServerResponse): void {
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.writeHead(405, { allow: 'GET, HEAD', ...SECURITY_HEADERS }).end();
      return;
    }
    let pathname: string;
    try {
      pathname = new URL(request.url ?? '/', 'http://localhost').pathname;
    } catch {
      pathname = '';
    }
    const file = this.#files.get(pathname === '/' ? '/index.html' : pathname);
    if (file === undefined) {
      response
        .writeHead(404, { 'content-type': 'text/plain; charset=utf-8', ...SECURITY_HEADERS })
        .end('not found\n');
      return;
    }
    response.writeHead(200, {
      'content-type': file.type,
      'content-length': file.body.length,
      ...SECURITY_HEADERS,
    });
    response.end(request.method === 'HEAD' ? undefined : file.body);
  }
}

/**
 * `dist/web` of the checkout this code runs from (sources or `dist/`): the directory holding the
 * root package.json, found by walking up. Undefined outside a checkout (an installed package).
 */
export function checkoutWebDir(from: string = __dirname): string | undefined {
  for (let dir = from; ; dir = dirname(dir)) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest)) {
      try {
        const { name } = JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string };
        if (name === 'securechat-server') return join(dir, 'dist', 'web');
      } catch {
        // not ours; keep walking
      }
    }
    if (dirname(dir) === dir) return undefined;
  }
}
