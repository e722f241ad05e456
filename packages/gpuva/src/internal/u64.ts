/**
 * Allocation-free fast paths for exact u64 arithmetic on `bigint`s. V8 allocates a heap object for
 * every `bigint` result, so the hot paths compare and add in doubles when every operand is below
 * 2^52 (then `Number()` is exact and so is any sum or difference of two operands) and fall back
 * to exact `bigint` arithmetic otherwise.
 *
 * @internal
 */

/** Operands below this convert to doubles exactly, and their sums/differences stay exact. */
export const EXACT = 1n << 52n

const TWO64 = 1n << 64n

/** `a + b === c` for non-negative `a`, `b`, `c` (no `bigint` allocated when all are below 2^52). */
export const sumIs = (a: bigint, b: bigint, c: bigint): boolean =>
  a >= 0n && b >= 0n && a < EXACT && b < EXACT && c < EXACT ? Number(a) + Number(b) === Number(c) : a + b === c

/** `(offA - addrA) ≡ (offB - addrB) (mod 2^64)` for u64 operands: the same linear translation. */
export const sameTranslation = (offA: bigint, addrA: bigint, offB: bigint, addrB: bigint): boolean => {
  if (offA < EXACT && addrA < EXACT && offB < EXACT && addrB < EXACT) {
    return Number(offA) - Number(addrA) === Number(offB) - Number(addrB)
  }
  const d = offA - addrA - (offB - addrB)
  return d === 0n || d === TWO64 || d === -TWO64
}
