/**
 * The part of the DOM's WebSocket that the test and bench pages use: the project's types are
 * Node's, not the DOM's (apps/web has its own tsconfig with the DOM library instead).
 */
export interface PageWebSocket {
  binaryType: 'arraybuffer' | 'blob';
  readonly protocol: string;
  send(data: Uint8Array): void;
  close(): void;
  addEventListener(type: 'open' | 'error', listener: () => void): void;
  addEventListener(type: 'close', listener: (event: { code: number }) => void): void;
  addEventListener(type: 'message', listener: (event: { data: unknown }) => void): void;
}

export const PageWebSocket = (
  globalThis as unknown as { WebSocket: new (url: string, protocol: string) => PageWebSocket }
).WebSocket;
