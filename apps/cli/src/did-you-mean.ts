/**
 * "Did you mean …?" for a mistyped command or option: the closest candidate by edit distance
 * (a swap of two neighbours counts as one edit, the commonest typo), or the one the word
 * begins. Nothing is suggested when no candidate is close: a wild guess misleads more than
 * none.
 */

/** Optimal string alignment distance: insertions, deletions, substitutions, adjacent swaps. */
export function editDistance(a: string, b: string): number {
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d: number[][] = Array.from({ length: rows }, (_, i) =>
    Array.from({ length: cols }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        best = Math.min(best, d[i - 2]![j - 2]! + 1);
      }
      d[i]![j] = best;
    }
  }
  return d[a.length]![b.length]!;
}

/** The candidate `word` most likely stands for, if one is close enough. */
export function closestMatch(word: string, candidates: readonly string[]): string | undefined {
  const typed = word.toLowerCase();
  // About one edit per three characters, and never more than two.
  const allowed = Math.min(2, Math.max(1, Math.floor(typed.length / 3)));
  let best: { candidate: string; distance: number } | undefined;
  for (const candidate of candidates) {
    const distance = editDistance(typed, candidate.toLowerCase());
    if (distance <= allowed && (best === undefined || distance < best.distance)) {
      best = { candidate, distance };
    }
  }
  if (best !== undefined) return best.candidate;
  if (typed.length < 3) return undefined;
  const begun = candidates.filter((candidate) => candidate.toLowerCase().startsWith(typed));
  return begun.length === 1 ? begun[0] : undefined;
}
