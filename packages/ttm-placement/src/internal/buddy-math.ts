/**
 * Power-of-two arithmetic of the buddy allocator, exact for every safe integer (no floating-point
 * rounding near 2^k), and its input check.
 *
 * @internal
 */

/** Exact floor(log2(x)) for a positive safe integer. */
export const log2 = (x: number): number =>
  x < 4294967296 ? 31 - Math.clz32(x) : 63 - Math.clz32(Math.floor(x / 4294967296))
/** `POW2[k] = 2^k`: a table lookup instead of `Math.pow` on hot paths. */
const POW2 = Float64Array.from({ length: 64 }, (_, k) => 2 ** k)
export const pow2 = (k: number): number => POW2[k] as number
export const isPow2 = (x: number): boolean => Number.isSafeInteger(x) && x > 0 && pow2(log2(x)) === x
export const floorPow2 = (x: number): number => pow2(log2(x))
export const ceilPow2 = (x: number): number => {
  const f = floorPow2(x)
  return f === x ? x : f * 2
}
/** Not a non-negative safe integer. */
export const badInt = (x: unknown): boolean => typeof x !== "number" || !Number.isSafeInteger(x) || x < 0
