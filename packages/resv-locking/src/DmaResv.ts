/**
 * `dma_resv`: a reservation object — a ww_mutex of `reservation_ww_class` plus a published table of
 * (fence, usage) entries describing every operation still using the buffer.
 *
 * ```ts
 * import { DmaFence, DmaResv, WwMutex } from "@drmkit/resv-locking"
 * import { Effect } from "effect"
 *
 * const bo = DmaResv.make("bo0")
 * const ring = DmaFence.contextAlloc("gfx")
 * const submit = Effect.scoped(
 *   Effect.gen(function* () {
 *     const ctx = yield* WwMutex.acquireCtx(WwMutex.reservationWwClass)
 *     const held = yield* DmaResv.lock(bo, ctx)           // Held<DmaResv>: the proof
 *     yield* DmaResv.reserveFences(held, 1)                // before the point of no return
 *     yield* DmaResv.addFence(held, DmaFence.make(ring), "write")
 *     yield* DmaResv.unlock(held)
 *   })
 * )
 * ```
 *
 * Every operation the kernel guards with `dma_resv_assert_held()` takes a `Held<DmaResv>` and still
 * checks at run time that the lock's owner is the running task (a defect otherwise). Unknown
 * usages and bad slot counts fail with `Invalid` and change nothing.
 *
 * @since 0.1.0
 */
import type { Already, Busy, Deadlock, Interrupted, Invalid } from "@drmkit/core"
import { Effect, type Scope } from "effect"
import type * as DmaFence from "./DmaFence.ts"
import type { Held } from "./Held.ts"
import { emptyList, type UsageRank } from "./internal/fenceList.ts"
import { heldByCurrent } from "./internal/held.ts"
import {
  checkHeld,
  DmaResv,
  heldKey,
  IterImpl,
  invalidUsage,
  noCheck,
  resetMaxFences,
  type Usage,
  usageRank
} from "./internal/resvCore.ts"
import * as WwMutex from "./WwMutex.ts"

export {
  /**
   * A reservation object (`struct dma_resv`).
   *
   * @since 0.1.0
   */
  DmaResv,
  /**
   * The defect of a `Held<DmaResv>` operation run without the lock (`dma_resv_assert_held`).
   *
   * @since 0.1.0
   */
  NotHeld,
  /**
   * Usage classes `KERNEL < WRITE < READ < BOOKKEEP` (`enum dma_resv_usage`).
   *
   * @since 0.1.0
   */
  Usage
} from "./internal/resvCore.ts"
export {
  addFence,
  /**
   * Synchronous {@link addFence} for hot loops: returns the `Invalid` instead of failing (a
   * missing lock or slot still throws, i.e. is a defect).
   *
   * @since 0.1.0
   */
  addFenceSync,
  copyFences,
  NoReservedSlot,
  replaceFences,
  reserveFences,
  /**
   * Synchronous {@link reserveFences} for hot loops: returns the `Invalid` instead of failing.
   *
   * @since 0.1.0
   */
  reserveFencesSync
} from "./internal/resvOps.ts"

export {
  /** `dma_resv_describe()`. @since 0.1.0 */
  describe,
  /** `dma_resv_get_fences()`. @since 0.1.0 */
  getFences,
  /** `dma_resv_get_singleton()`. @since 0.1.0 */
  getSingleton,
  /** `dma_resv_test_signaled()`. @since 0.1.0 */
  testSignaled,
  /** Options of `waitTimeout`. @since 0.1.0 */
  type WaitOptions,
  /** `dma_resv_wait_timeout()`. @since 0.1.0 */
  waitTimeout
} from "./internal/resvQueries.ts"

const requireUsage = (usage: Usage): UsageRank => {
  const r = usageRank(usage)
  if (r === undefined) throw invalidUsage(usage)
  return r
}

/**
 * Orders two usages by `enum dma_resv_usage` value: negative when `a` is stronger (seen by more
 * queries) than `b`.
 *
 * @throws Invalid for an unknown usage.
 * @since 0.1.0
 * @category usage
 */
export const compareUsage = (a: Usage, b: Usage): number => requireUsage(a) - requireUsage(b)

/**
 * The usage a new access must wait for: a writer waits for `read` (reads and writes), a reader
 * only for `write`. Looks inverted on purpose. Models `dma_resv_usage_rw(write)`.
 *
 * @since 0.1.0
 * @category usage
 */
export const usageRw = (write: boolean): Usage => (write ? "read" : "write")

/**
 * Creates a reservation object. Models `dma_resv_init()`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (name: string): DmaResv => new DmaResv(name)

/**
 * Destroys `resv`: drops its fences and destroys its mutex (which must be unlocked). Models
 * `dma_resv_fini()`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const fini = (resv: DmaResv): Effect.Effect<void, Invalid | Busy> =>
  Effect.tap(WwMutex.destroy(resv.mutex), () =>
    Effect.sync(() => {
      resv.list = emptyList()
    })
  )

/**
 * Asserts that the running task holds `held`'s lock; returns the resv. Models
 * `dma_resv_assert_held()` (a defect where lockdep would splat).
 *
 * @since 0.1.0
 * @category locking
 */
export const assertHeld = (held: Held<DmaResv>): Effect.Effect<DmaResv> =>
  Effect.sync(() => checkHeld(held, "dma_resv_assert_held"))

/**
 * Whether the running task holds `resv`'s lock. Models `dma_resv_held()` (held-by-me, unlike
 * {@link isLocked}).
 *
 * @since 0.1.0
 * @category locking
 */
export const isHeld = (resv: DmaResv): boolean => heldByCurrent(resv[heldKey])

const witness = (resv: DmaResv) => () => resv[heldKey]

/**
 * The witness for `resv` if the running task holds its lock (however it was locked, e.g. through
 * the synchronous ww core), else `undefined`. `dma_resv_held()` returning the proof.
 *
 * @since 0.1.0
 * @category locking
 */
export const heldByMe = (resv: DmaResv): Held<DmaResv> | undefined =>
  heldByCurrent(resv[heldKey]) ? resv[heldKey] : undefined

/**
 * Locks `resv` with `ctx` (or, without one, as a plain FIFO mutex). Models `dma_resv_lock()`.
 *
 * @returns the witness; fails with `Deadlock` (back off), `Already` (this ctx holds it) or
 *   `Invalid` (destroyed).
 * @since 0.1.0
 * @category locking
 */
export const lock = (
  resv: DmaResv,
  ctx?: WwMutex.AcquireCtx
): Effect.Effect<Held<DmaResv>, Deadlock | Already | Invalid> =>
  Effect.map(ctx === undefined ? WwMutex.lockNoCtx(resv.mutex) : WwMutex.lock(resv.mutex, ctx), witness(resv))

/**
 * {@link lock}, also failing with `Interrupted` when the task is signalled while sleeping. Models
 * `dma_resv_lock_interruptible()`.
 *
 * @since 0.1.0
 * @category locking
 */
export const lockInterruptible = (
  resv: DmaResv,
  ctx?: WwMutex.AcquireCtx
): Effect.Effect<Held<DmaResv>, Deadlock | Already | Interrupted | Invalid> =>
  Effect.map(
    ctx === undefined ? WwMutex.lockNoCtxInterruptible(resv.mutex) : WwMutex.lockInterruptible(resv.mutex, ctx),
    witness(resv)
  )

/**
 * The backoff slow path: lock the contended `resv` after releasing everything. Models
 * `dma_resv_lock_slow()`.
 *
 * @since 0.1.0
 * @category locking
 */
export const lockSlow = (resv: DmaResv, ctx: WwMutex.AcquireCtx): Effect.Effect<Held<DmaResv>, Invalid> =>
  Effect.map(WwMutex.lockSlow(resv.mutex, ctx), witness(resv))

/**
 * {@link lockSlow}, interruptible. Models `dma_resv_lock_slow_interruptible()`.
 *
 * @since 0.1.0
 * @category locking
 */
export const lockSlowInterruptible = (
  resv: DmaResv,
  ctx: WwMutex.AcquireCtx
): Effect.Effect<Held<DmaResv>, Interrupted | Invalid> =>
  Effect.map(WwMutex.lockSlowInterruptible(resv.mutex, ctx), witness(resv))

/**
 * Tries to lock `resv` without a ctx and without blocking: the witness, or `undefined` when busy.
 * Models `dma_resv_trylock()`.
 *
 * @since 0.1.0
 * @category locking
 */
export const trylock = (resv: DmaResv): Effect.Effect<Held<DmaResv> | undefined, Invalid> =>
  Effect.map(WwMutex.trylock(resv.mutex), (h) => (h === undefined ? undefined : resv[heldKey]))

/**
 * Unlocks `resv`. In strict mode the reserved-but-unused slots are dropped first, so code relying
 * on a reservation across an unlock fails loudly. Models `dma_resv_unlock()` (with
 * `dma_resv_reset_max_fences()`).
 *
 * @since 0.1.0
 * @category locking
 */
export const unlock = (held: Held<DmaResv>): Effect.Effect<void> =>
  Effect.suspend(() => {
    const resv = held.target
    if (heldByCurrent(resv[heldKey])) resetMaxFences(resv)
    return WwMutex.unlock(resv.mutex)
  })

/**
 * {@link lock} as a scoped resource: `dma_resv_lock()` now, `dma_resv_unlock()` when the Scope
 * closes (success, failure or interruption) — the Rust guard's drop. For one object; lock many
 * through `Exec` (one finalizer for the whole set).
 *
 * @since 0.1.0
 * @category locking
 */
export const lockScoped = (
  resv: DmaResv,
  ctx?: WwMutex.AcquireCtx
): Effect.Effect<Held<DmaResv>, Deadlock | Already | Invalid, Scope.Scope> =>
  Effect.acquireRelease(lock(resv, ctx), unlock)

/**
 * Whether anyone holds `resv`'s lock. Models `dma_resv_is_locked()`.
 *
 * @since 0.1.0
 * @category locking
 */
export const isLocked = (resv: DmaResv): boolean => resv.mutex.isLocked

/**
 * The acquire ctx holding `resv`, `undefined` when unlocked or locked without a ctx. Models
 * `dma_resv_locking_ctx()`.
 *
 * @since 0.1.0
 * @category locking
 */
export const lockingCtx = (resv: DmaResv): WwMutex.AcquireCtx | undefined => resv.mutex.lockingCtx

/**
 * A cursor over a reservation object's fences (`struct dma_resv_iter`): iterate it with `for..of`
 * and read `usage` / `isRestarted` for the current fence.
 *
 * @since 0.1.0
 * @category iterators
 */
export interface Iter extends Iterable<DmaFence.DmaFence> {
  /** Starts (or restarts) the walk. Models `dma_resv_iter_first[_unlocked]()`. */
  first(): DmaFence.DmaFence | undefined
  /** Next fence or `undefined`. Models `dma_resv_iter_next[_unlocked]()`. */
  next(): DmaFence.DmaFence | undefined
  /** The current fence (an unlocked cursor holds its reference). */
  readonly fence: DmaFence.DmaFence | undefined
  /** Usage of the current fence. Models `dma_resv_iter_usage()`. */
  readonly usage: Usage
  /** First fence after a (re)start. Models `dma_resv_iter_is_restarted()`. */
  readonly isRestarted: boolean
}

/**
 * The locked iterator: every entry with usage <= `usage`, **signalled ones included**, never
 * restarting; each step asserts the lock. Models `dma_resv_for_each_fence()`.
 *
 * @throws Invalid for an unknown usage; a defect when the lock is not held.
 * @since 0.1.0
 * @category iterators
 */
export const iter = (held: Held<DmaResv>, usage: Usage): Iter => {
  const rank = requireUsage(usage)
  const resv = checkHeld(held, "dma_resv_iter_first")
  return new IterImpl(resv, rank, false, () => checkHeld(held, "dma_resv_iter_next"))
}

/**
 * The lockless iterator: unsignalled entries with usage <= `usage`; restarts from the beginning
 * (with `isRestarted` set) when the fence table is replaced under it. Callers that accumulate must
 * reset on `isRestarted`. Models `dma_resv_for_each_fence_unlocked()`.
 *
 * @throws Invalid for an unknown usage.
 * @since 0.1.0
 * @category iterators
 */
export const iterUnlocked = (resv: DmaResv, usage: Usage): Iter =>
  new IterImpl(resv, requireUsage(usage), true, noCheck)
