/**
 * Branded units. A `Bytes` is not a `PageCount` is not a `GpuVa`: the brands stop a byte count
 * from being passed where a page count is expected. Sizes are JS numbers (exact up to 2^53);
 * addresses are `bigint` so the whole u64 range is exact.
 *
 * Construct through the validating constructors (`Bytes.make` etc.), which fail with
 * {@link Invalid}; `Bytes.unsafe` is for values already checked.
 *
 * @since 0.1.0
 */
import type { Brand, Effect } from "effect"
import type { Invalid } from "./Errors.ts"
import { checkInt, checkU64, requireInt, requireU64 } from "./Validate.ts"

/**
 * CPU/GPU page size modelled by drmkit (4 KiB), as in `PAGE_SIZE`.
 *
 * @since 0.1.0
 * @category constants
 */
export const PAGE_SIZE = 4096
/**
 * `PAGE_SHIFT`: log2 of {@link PAGE_SIZE}.
 *
 * @since 0.1.0
 * @category constants
 */
export const PAGE_SHIFT = 12

/** @since 0.1.0 @category units */
export type Bytes = number & Brand.Brand<"Bytes">
/** @since 0.1.0 @category units */
export type PageCount = number & Brand.Brand<"PageCount">
/** @since 0.1.0 @category units */
export type GpuVa = bigint & Brand.Brand<"GpuVa">
/** @since 0.1.0 @category units */
export type PhysAddr = bigint & Brand.Brand<"PhysAddr">

const nominal = <T extends number | bigint>(x: number | bigint): T => x as T

/**
 * A non-negative byte count.
 *
 * @since 0.1.0
 * @category units
 */
export const Bytes = {
  make: (n: unknown, what = "bytes"): Effect.Effect<Bytes, Invalid> =>
    requireInt(what, n) as Effect.Effect<Bytes, Invalid>,
  is: (n: unknown): n is Bytes => checkInt("bytes", n) === undefined,
  unsafe: (n: number): Bytes => nominal<Bytes>(n),
  /** Page-aligned byte count (a multiple of {@link PAGE_SIZE}). */
  makePageAligned: (n: unknown, what = "bytes"): Effect.Effect<Bytes, Invalid> =>
    requireInt(what, n, { multipleOf: PAGE_SIZE }) as Effect.Effect<Bytes, Invalid>
}

/**
 * A non-negative number of {@link PAGE_SIZE} pages.
 *
 * @since 0.1.0
 * @category units
 */
export const PageCount = {
  make: (n: unknown, what = "pages"): Effect.Effect<PageCount, Invalid> =>
    requireInt(what, n) as Effect.Effect<PageCount, Invalid>,
  is: (n: unknown): n is PageCount => checkInt("pages", n) === undefined,
  unsafe: (n: number): PageCount => nominal<PageCount>(n),
  /** Pages needed to hold `bytes` (rounded up). */
  ofBytes: (bytes: Bytes): PageCount => nominal<PageCount>(Math.ceil(bytes / PAGE_SIZE)),
  toBytes: (pages: PageCount): Bytes => nominal<Bytes>(pages * PAGE_SIZE)
}

/**
 * A GPU virtual address (u64, exact).
 *
 * @since 0.1.0
 * @category units
 */
export const GpuVa = {
  make: (n: unknown, what = "gpu va"): Effect.Effect<GpuVa, Invalid> =>
    requireU64(what, n) as Effect.Effect<GpuVa, Invalid>,
  is: (n: unknown): n is GpuVa => checkU64("gpu va", n) === undefined,
  unsafe: (n: bigint): GpuVa => nominal<GpuVa>(n)
}

/**
 * A physical (device) address (u64, exact).
 *
 * @since 0.1.0
 * @category units
 */
export const PhysAddr = {
  make: (n: unknown, what = "phys addr"): Effect.Effect<PhysAddr, Invalid> =>
    requireU64(what, n) as Effect.Effect<PhysAddr, Invalid>,
  is: (n: unknown): n is PhysAddr => checkU64("phys addr", n) === undefined,
  unsafe: (n: bigint): PhysAddr => nominal<PhysAddr>(n)
}
