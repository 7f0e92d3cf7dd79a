// Preloaded into a service by `npm run bench -- --profile` (NODE_OPTIONS=--require …, since
// Node 20 refuses --cpu-prof in NODE_OPTIONS): samples the CPU from start to exit and writes
// BENCH_CPU_PROF_DIR/CPU.0.0.<pid>.0.0.cpuprofile, the name --cpu-prof would use.
const { Session } = require('node:inspector');
const { writeFileSync } = require('node:fs');
const { join } = require('node:path');

const dir = process.env.BENCH_CPU_PROF_DIR;
if (dir) {
  const session = new Session();
  session.connect();
  session.post('Profiler.enable');
  session.post('Profiler.setSamplingInterval', { interval: 1000 });
  session.post('Profiler.start');
  let written = false;
  // A same-thread inspector session answers synchronously, so this works in 'exit'.
  process.on('exit', () => {
    if (written) return;
    written = true;
    session.post('Profiler.stop', (error, result) => {
      if (!error) {
        writeFileSync(
          join(dir, `CPU.0.0.${process.pid}.0.0.cpuprofile`),
          JSON.stringify(result.profile),
        );
      }
    });
  });
}
