/**
 * Lock-free snapshots, tests and waits of a reservation object (internal module; re-exported by
 * `DmaResv.ts`).
 *
 * @since 0.1.0
 */
import { Invalid, type RestartSys } from "@drmkit/core"
import { Effect } from "effect"
import * as DmaFence from "../DmaFence.ts"
import type { Held } from "../Held.ts"
import type { UsageRank } from "./fenceList.ts"
import {
  checkHeld,
  type DmaResv,
  IterImpl,
  invalidUsage,
  noCheck,
  snapshotFences,
  type Usage,
  usageRank
} from "./resvCore.ts"

const withUsage = <A>(usage: Usage, f: (rank: UsageRank) => A): Effect.Effect<A, Invalid> =>
  Effect.suspend(() => {
    const rank = usageRank(usage)
    return rank === undefined ? Effect.fail(invalidUsage(usage)) : Effect.sync(() => f(rank))
  })

/**
 * The unsignalled fences with usage <= `usage`, without the lock. Models `dma_resv_get_fences()`.
 *
 * @since 0.1.0
 * @category snapshots
 */
export const getFences = (resv: DmaResv, usage: Usage): Effect.Effect<ReadonlyArray<DmaFence.DmaFence>, Invalid> =>
  withUsage(usage, (rank) => snapshotFences(resv, rank))

/**
 * One fence standing for all unsignalled fences with usage <= `usage`: `undefined` for none, the
 * fence itself for one, a new {@link DmaFence.FenceArray} on a fresh context for more. Models
 * `dma_resv_get_singleton()`.
 *
 * @since 0.1.0
 * @category snapshots
 */
export const getSingleton = (resv: DmaResv, usage: Usage): Effect.Effect<DmaFence.DmaFence | undefined, Invalid> =>
  withUsage(usage, (rank) => {
    const fences = snapshotFences(resv, rank)
    if (fences.length <= 1) return fences[0]
    return new DmaFence.FenceArray(fences, { context: DmaFence.contextAlloc("dma_resv_get_singleton"), seqno: 1 })
  })

/**
 * True iff no unsignalled fence with usage <= `usage` remains. Models `dma_resv_test_signaled()`.
 *
 * @since 0.1.0
 * @category waiting
 */
export const testSignaled = (resv: DmaResv, usage: Usage): Effect.Effect<boolean, Invalid> =>
  withUsage(usage, (rank) => new IterImpl(resv, rank, true, noCheck).first() === undefined)

/**
 * Options of {@link waitTimeout}: the `intr` and `timeout` arguments of `dma_resv_wait_timeout()`.
 *
 * @since 0.1.0
 * @category waiting
 */
export interface WaitOptions {
  /** A task signal ends the wait with `RestartSys`. */
  readonly interruptible?: boolean
  /** Budget in ms shared by all fences (default `Infinity`; 0 polls without blocking). */
  readonly timeoutMs?: number
}

/**
 * Waits for every unsignalled fence with usage <= `usage`, passing the remaining budget from one
 * wait to the next; no lock needed. Returns the remaining budget (> 0), 0 on timeout, or fails with
 * `RestartSys` when interrupted. A zero timeout polls: 1 when idle, 0 when busy, never blocking
 * (the documented semantics; the kernel's code may wait one tick there). Models
 * `dma_resv_wait_timeout()`.
 *
 * @since 0.1.0
 * @category waiting
 */
export const waitTimeout = (
  resv: DmaResv,
  usage: Usage,
  options: WaitOptions = {}
): Effect.Effect<number, RestartSys | Invalid> =>
  Effect.gen(function* () {
    const rank = usageRank(usage)
    if (rank === undefined) return yield* Effect.fail(invalidUsage(usage))
    let left = options.timeoutMs ?? Number.POSITIVE_INFINITY
    if (!(left >= 0)) return yield* new Invalid({ what: "dma_resv_wait_timeout", reason: "must be >= 0", value: left })
    if (left === 0) return new IterImpl(resv, rank, true, noCheck).first() === undefined ? 1 : 0
    const it = new IterImpl(resv, rank, true, noCheck)
    for (let f = it.first(); f !== undefined; f = it.next()) {
      left = yield* DmaFence.wait(f, { interruptible: options.interruptible === true, timeoutMs: left })
      if (left <= 0) return 0
    }
    return left
  })

/**
 * A debugfs-style dump, one line per entry with usage <= `read` (signalled ones included):
 * `"<usage> fence: <timeline>#<ctx>:<seqno> signalled|unsignalled"`. Walks the fences with the
 * locked iterator, so it needs the lock (a defect without it). Models `dma_resv_describe()`.
 *
 * @since 0.1.0
 * @category debugging
 */
export const describe = (held: Held<DmaResv>): string => {
  const it = new IterImpl(checkHeld(held, "dma_resv_describe"), 2, false, () => checkHeld(held, "dma_resv_describe"))
  const lines: Array<string> = []
  for (const f of it) lines.push(`${it.usage} fence: ${f} ${f.isSignaled ? "signalled" : "unsignalled"}`)
  return lines.join("\n")
}
