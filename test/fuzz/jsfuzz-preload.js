// Loaded with `node --require` into jsfuzz's processes by scripts/fuzz.mjs (NODE_OPTIONS).
//
// jsfuzz's worker instruments every `.js` file it requires (istanbul-lib-hook with a matcher
// that accepts everything), so node_modules — zod, NestJS, drizzle — would count as coverage
// and cost instrumented time. This narrows its matcher to the compiled sources in the
// directories of FUZZ_INSTRUMENT_DIRS (path.delimiter-separated: libs/protocol/src,
// apps/gateway-tcp/src, … under scripts/fuzz.mjs's build directory), never a `test` directory
// (the fuzz harness, the test helpers): the coverage jsfuzz steers by, and reports, is then the
// code under test only.
const path = require('node:path');

const dirs = (process.env.FUZZ_INSTRUMENT_DIRS ?? '').split(path.delimiter).filter(Boolean);
if (dirs.length > 0) {
  const worker = require.resolve('jsfuzz/build/src/worker.js');
  const hookPath = require.resolve('istanbul-lib-hook', { paths: [path.dirname(worker)] });
  const hook = require(hookPath);
  const original = hook.hookRequire;
  const prefixes = dirs.map((dir) => (dir.endsWith(path.sep) ? dir : dir + path.sep));
  const isCodeUnderTest = (file) =>
    prefixes.some(
      (prefix) =>
        file.startsWith(prefix) && !file.slice(prefix.length).split(path.sep).includes('test'),
    );
  // Instrumenting is most of a worker's start-up: keep each file's instrumented code, keyed by
  // its path and content, so the next run of any target starts in a second or two.
  const cacheDir = process.env.FUZZ_INSTRUMENT_CACHE;
  const cached = (transformer) => {
    if (!cacheDir) return transformer;
    const fs = require('node:fs');
    const { createHash } = require('node:crypto');
    fs.mkdirSync(cacheDir, { recursive: true });
    return (code, options) => {
      const file = typeof options === 'string' ? options : options.filename;
      const key = createHash('sha256').update(file).update('\0').update(code).digest('hex');
      const entry = path.join(cacheDir, `${key}.js`);
      try {
        return fs.readFileSync(entry, 'utf8');
      } catch {
        const instrumented = transformer(code, options);
        fs.writeFileSync(`${entry}.${process.pid}`, instrumented);
        fs.renameSync(`${entry}.${process.pid}`, entry);
        return instrumented;
      }
    };
  };
  hook.hookRequire = (matcher, transformer, options) =>
    original((file) => isCodeUnderTest(file) && matcher(file), cached(transformer), options);
}
