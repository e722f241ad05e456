/**
 * The mutators of a reservation object (internal): each checks the witness first (a defect
 * without the lock), then validates its input (`Invalid`, nothing changed), then acts. The `*Sync`
 * forms return the `Invalid` instead of failing, for the synchronous exec fast path.
 *
 * @since 0.1.0
 */
import { checkInt, Invalid } from "@drmkit/core"
import { Effect } from "effect"
import type { DmaFence, FenceContext } from "../DmaFence.ts"
import type { Held } from "../Held.ts"
import { add, fromEntries, replaceContext, reserve } from "./fenceList.ts"
import { checkHeld, type DmaResv, invalidUsage, snapshot, type Usage, usageRank } from "./resvCore.ts"

/** Largest slot count one reservation may ask for (a sanity bound, far above any driver's). */
export const maxReserve = 1 << 20

const lift = (e: Invalid | undefined): Effect.Effect<void, Invalid> => (e === undefined ? Effect.void : Effect.fail(e))

/** The defect of an append without a reserved slot (the kernel's `BUG_ON`). */
export class NoReservedSlot extends Error {
  readonly _tag = "NoReservedSlot"
  constructor(resv: DmaResv, fence: DmaFence) {
    super(`BUG: dma_resv_add_fence(${resv.name}, ${fence}): no reserved slot (call reserveFences first)`)
    this.name = "NoReservedSlot"
  }
}

/** {@link reserveFences} returning its `Invalid`. */
export const reserveFencesSync = (held: Held<DmaResv>, n: number): Invalid | undefined => {
  const resv = checkHeld(held, "dma_resv_reserve_fences")
  const bad = checkInt("dma_resv_reserve_fences num_fences", n, { min: 1, max: maxReserve })
  if (bad !== undefined) return bad
  resv.list = reserve(resv.list, n)
  return undefined
}

/**
 * Makes sure `n` more {@link addFence} calls will find a slot: not additive (`count + n <= capacity`
 * at this moment), growing to at least 4, powers of two first, then max(needed, 2 x old), rounded up
 * to the allocator bucket; a reallocation prunes signalled fences (and makes lockless iterators
 * restart). Reservations do not survive an unlock in strict mode. Models
 * `dma_resv_reserve_fences()`.
 *
 * @returns fails with `Invalid` for a zero, negative, fractional or absurd `n` (nothing changed; the
 *   kernel WARNs on 0 and returns `-EINVAL`: a zero count usually means a miscalculated one); a
 *   defect without the lock.
 * @since 0.1.0
 * @category fences
 */
export const reserveFences = (held: Held<DmaResv>, n: number): Effect.Effect<void, Invalid> =>
  Effect.suspend(() => lift(reserveFencesSync(held, n)))

const checkFence = (fence: unknown, what: string): Invalid | undefined => {
  if (typeof fence !== "object" || fence === null || !("isContainer" in fence)) {
    return new Invalid({ what, reason: "not a dma_fence", value: fence })
  }
  if ((fence as DmaFence).isContainer) {
    return new Invalid({
      what,
      reason: "container fences must not be added; add their components",
      value: String(fence)
    })
  }
  return undefined
}

/** {@link addFence} returning its `Invalid`. */
export const addFenceSync = (held: Held<DmaResv>, fence: DmaFence, usage: Usage): Invalid | undefined => {
  const resv = checkHeld(held, "dma_resv_add_fence")
  const rank = usageRank(usage)
  if (rank === undefined) return invalidUsage(usage)
  const bad = checkFence(fence, "dma_resv_add_fence")
  if (bad !== undefined) return bad
  if (add(resv.list, fence, rank) === "no-slot") throw new NoReservedSlot(resv, fence)
  return undefined
}

/**
 * Adds `fence` with `usage`. Replaces in place the first entry that is signalled, or that belongs
 * to `fence`'s context with a usage >= `usage` (so an entry is only ever promoted, never degraded)
 * and that `fence` is later-or-same than; otherwise appends into a reserved slot. Models `dma_resv_add_fence()` (with
 * the Nov 2023 `dma_fence_is_later_or_same` rule).
 *
 * @returns fails with `Invalid` for an unknown usage or a container fence (nothing changed); a
 *   defect without the lock or when an append finds no reserved slot (the kernel BUGs).
 * @since 0.1.0
 * @category fences
 */
export const addFence = (held: Held<DmaResv>, fence: DmaFence, usage: Usage): Effect.Effect<void, Invalid> =>
  Effect.suspend(() => lift(addFenceSync(held, fence, usage)))

/**
 * Replaces every entry of `context` by (`fence`, `usage`) — e.g. a preemption fence by a
 * page-table-update fence. Models `dma_resv_replace_fences()`.
 *
 * @returns fails with `Invalid` for an unknown usage or a container fence (nothing changed).
 * @since 0.1.0
 * @category fences
 */
export const replaceFences = (
  held: Held<DmaResv>,
  context: FenceContext,
  fence: DmaFence,
  usage: Usage
): Effect.Effect<void, Invalid> =>
  Effect.suspend(() => {
    const resv = checkHeld(held, "dma_resv_replace_fences")
    const rank = usageRank(usage)
    if (rank === undefined) return Effect.fail(invalidUsage(usage))
    const bad = checkFence(fence, "dma_resv_replace_fences")
    if (bad !== undefined) return Effect.fail(bad)
    replaceContext(resv.list, context, fence, rank)
    return Effect.void
  })

/**
 * Replaces `dst`'s fences by `src`'s unsignalled ones with their usages (read without `src`'s
 * lock, restarting as needed); publishes a new table sized for `src`'s whole table (signalled
 * entries included, as the kernel allocates), or none when nothing is unsignalled, so lockless
 * readers of `dst` restart. Models `dma_resv_copy_fences()`.
 *
 * @since 0.1.0
 * @category fences
 */
export const copyFences = (dst: Held<DmaResv>, src: DmaResv): Effect.Effect<void> =>
  Effect.sync(() => {
    const resv = checkHeld(dst, "dma_resv_copy_fences")
    const { entries, tableCount } = snapshot(src, 3)
    resv.list = fromEntries(entries, tableCount)
  })
