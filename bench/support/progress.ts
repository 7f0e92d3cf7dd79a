/**
 * The one-line progress display of `npm run bench` and `npm run bench:protocol`, on stderr so
 * that stdout stays the report. On a terminal the line is redrawn in place (and cut to its
 * width, or a wrapped line could not be redrawn); otherwise each update is a line of its own,
 * for logs. After plan(), each line starts with the time elapsed and an estimate of the rest.
 */
export class Progress {
  readonly #tty = process.stderr.isTTY;
  readonly #started = Date.now();
  #done = 0;
  #total: number | undefined;
  #step = '';

  /** The whole run's expected length, in the seconds advance() counts. */
  plan(totalSeconds: number): void {
    this.#total = Math.max(1, totalSeconds);
  }

  advance(seconds: number): void {
    this.#done += seconds;
  }

  /** What runs now; show() adds details to it. */
  step(text: string): void {
    this.#step = text;
    this.show('');
  }

  show(detail: string): void {
    const text = this.#step && detail ? `${this.#step} — ${detail}` : this.#step || detail;
    const line = this.#total === undefined ? text : `${this.#timing(this.#total)} ${text}`;
    const width = process.stderr.columns ?? 120;
    process.stderr.write(this.#tty ? `\r\x1b[K${line.slice(0, width - 1)}` : `${line}\n`);
  }

  /** A line that stays (a warning), above the progress line. */
  log(text: string): void {
    process.stderr.write(this.#tty ? `\r\x1b[K${text}\n` : `${text}\n`);
    if (this.#tty) this.show('');
  }

  end(): void {
    if (this.#tty) process.stderr.write('\r\x1b[K');
  }

  #timing(total: number): string {
    const elapsed = (Date.now() - this.#started) / 1000;
    const fraction = Math.min(0.99, this.#done / total);
    const eta = fraction > 0.02 ? (elapsed / fraction) * (1 - fraction) : total - elapsed;
    return `[${clock(elapsed)} elapsed, ~${clock(Math.max(0, eta))} left]`;
  }
}

/** m:ss */
function clock(seconds: number): string {
  const s = Math.round(seconds);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}
