// Injected into every browser bundle by scripts/build-web.mjs: libs/protocol uses the global
// `Buffer` throughout, and browsers have none. The `buffer` package is Node's Buffer API over
// Uint8Array (without Node's newer encodings, such as 'base64url': libs/protocol does not use them
// on the browser path).
export { Buffer } from 'buffer';
