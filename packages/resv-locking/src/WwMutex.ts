/**
 * Wound/wait mutexes, classes and acquire contexts — `include/linux/ww_mutex.h` as Effects.
 *
 * A transaction takes an acquire context (ticket) of a class, locks any number of mutexes of that
 * class in any order, and on `Deadlock` (`-EDEADLK`) backs off: unlock everything, slow-lock the
 * contended mutex, retry with the **same** ticket. Wait-die classes kill the younger requester;
 * wound-wait classes wound the younger holder (it dies lazily at its next contended lock).
 * `Deadlock` only ever happens while the ctx holds locks; ctx-less lockers queue FIFO and never
 * fail. Ownership is per task (fiber), see `Task`.
 *
 * Uncontended lock/unlock run the synchronous core (`internal/ww.ts`): no Scope, no Deferred, no
 * waiter and no witness is allocated per call (the witness is cached per mutex). Only a lock that
 * has to sleep queues a waiter.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { WwMutex } from "@drmkit/resv-locking"
 *
 * const cls = WwMutex.WwClass.waitDie("demo")
 * const [a, b] = [WwMutex.make(cls, "a"), WwMutex.make(cls, "b")]
 *
 * // Method 2 of ww-mutex-design.rst: lock a list, back off and retry on -EDEADLK.
 * const lockAll = (ctx: WwMutex.AcquireCtx, locks: ReadonlyArray<WwMutex.WwMutex>) =>
 *   Effect.gen(function* () {
 *     let contended: WwMutex.WwMutex | undefined
 *     while (true) {
 *       if (contended) yield* WwMutex.lockSlow(contended, ctx)
 *       const r = yield* Effect.result(Effect.forEach(locks, (m) =>
 *         m === contended ? Effect.void : WwMutex.lock(m, ctx), { discard: true }))
 *       if (r._tag === "Success") return
 *       yield* WwMutex.unlockAll(ctx)                       // back off, keep the ticket
 *       if (r.failure._tag !== "Deadlock") return yield* Effect.fail(r.failure)
 *       contended = locks.find((m) => m.name === r.failure.lock)
 *     }
 *   })
 *
 * const program = Effect.scoped(Effect.gen(function* () {
 *   const ctx = yield* WwMutex.acquireCtx(cls)
 *   yield* lockAll(ctx, [a, b])
 *   yield* WwMutex.acquireDone(ctx)
 *   // ... both held; the scope unlocks them and finis the ctx
 * }))
 * ```
 *
 * @since 0.1.0
 */
import type { Already, Busy, Deadlock, Interrupted } from "@drmkit/core"
import { Busy as BusyError, Invalid } from "@drmkit/core"
import { Effect, Exit, type Scope } from "effect"
import type { Held } from "./Held.ts"
import { release as releaseMutex } from "./internal/queue.ts"
import { afterAcquire, dieViolation, failCode, heldOf, sleepOn } from "./internal/shell.ts"
import { type AcquireCtx, Code, WwClass, WwMutex } from "./internal/state.ts"
import { type CtxOptions, ctxDone, ctxFini, ctxInit, lockEnter, trylockFast, unlockFast } from "./internal/ww.ts"

export {
  /**
   * An acquire context (`struct ww_acquire_ctx`).
   *
   * @since 0.1.0
   */
  AcquireCtx,
  /**
   * The two algorithms.
   *
   * @since 0.1.0
   */
  type Algorithm,
  /**
   * A ww class (`struct ww_class`).
   *
   * @since 0.1.0
   */
  WwClass,
  /**
   * A wound/wait mutex (`struct ww_mutex`).
   *
   * @since 0.1.0
   */
  WwMutex
} from "./internal/state.ts"

/**
 * Options of {@link acquireCtx} / {@link acquireInit}: per-ctx switches overriding `Lockdep`'s
 * global ones.
 *
 * @since 0.1.0
 * @category models
 */
export type AcquireOptions = CtxOptions

/**
 * The class of every `dma_resv` lock: wait-die, named `reservation_ww_class` as in the kernel.
 *
 * @since 0.1.0
 * @category classes
 */
export const reservationWwClass: WwClass = WwClass.waitDie("reservation_ww_class")

/**
 * Creates a mutex of `cls`. Models `ww_mutex_init()`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (cls: WwClass, name: string): WwMutex => new WwMutex(cls, name)

/**
 * `ww_acquire_init()` in the running task: a fresh ticket (next stamp of the class). Prefer the
 * scoped {@link acquireCtx}. Dies in strict mode when the task already has a live ctx of `cls`.
 *
 * @since 0.1.0
 * @category acquire context
 */
export const acquireInit = (cls: WwClass, options?: AcquireOptions): Effect.Effect<AcquireCtx> =>
  Effect.withFiber((fiber) => {
    const ctx = ctxInit(cls, fiber.id, options)
    return ctx === undefined ? dieViolation() : Effect.succeed(ctx)
  })

/**
 * `ww_acquire_done()`: marks the end of the acquire phase; a later lock is a strict-mode report.
 *
 * @since 0.1.0
 * @category acquire context
 */
export const acquireDone = (ctx: AcquireCtx): Effect.Effect<void> =>
  Effect.withFiber((fiber) => (ctxDone(ctx, fiber.id) === Code.OK ? Effect.void : dieViolation()))

/**
 * `ww_acquire_fini()`: ends the ticket. Locks still held are released (reverse order) — in strict
 * mode that, and a second fini, are reported.
 *
 * @since 0.1.0
 * @category acquire context
 */
export const acquireFini = (ctx: AcquireCtx): Effect.Effect<void> =>
  Effect.withFiber((fiber) => (ctxFini(ctx, fiber.id, true) === Code.OK ? Effect.void : dieViolation()))

/**
 * A scoped acquire context: `ww_acquire_init()` now, `ww_acquire_fini()` when the scope closes.
 * On failure or interruption the scope releases every lock the ctx still holds; on success a ctx
 * that still holds locks is a strict-mode report ("fini with locks held") and is released anyway.
 *
 * @since 0.1.0
 * @category acquire context
 */
export const acquireCtx = (cls: WwClass, options?: AcquireOptions): Effect.Effect<AcquireCtx, never, Scope.Scope> =>
  Effect.acquireRelease(acquireInit(cls, options), (ctx, exit) =>
    Effect.suspend(() => (ctxFini(ctx, ctx.task, Exit.isSuccess(exit)) === Code.OK ? Effect.void : dieViolation()))
  )

const lockWith = (
  m: WwMutex,
  ctx: AcquireCtx | undefined,
  slow: boolean,
  interruptible: boolean
): Effect.Effect<Held<WwMutex>, Deadlock | Already | Interrupted | Invalid> =>
  Effect.withFiber((fiber) => {
    const code = lockEnter(m, ctx, fiber.id, slow)
    if (code === Code.OK) return afterAcquire(m, ctx)
    if (code === Code.BUSY) return sleepOn(m, ctx, fiber.id, interruptible)
    return failCode(code, m, ctx)
  })

/**
 * `ww_mutex_lock(lock, ctx)`: the witness, `Deadlock` (back off; only while `ctx` holds locks),
 * `Already` (this ctx holds `m`; nothing changes) or `Invalid` (destroyed mutex, other class).
 * Sleeps while contended; fiber interruption abandons the wait.
 *
 * @since 0.1.0
 * @category locking
 */
export const lock = (m: WwMutex, ctx: AcquireCtx): Effect.Effect<Held<WwMutex>, Deadlock | Already | Invalid> =>
  lockWith(m, ctx, false, false) as Effect.Effect<Held<WwMutex>, Deadlock | Already | Invalid>

/**
 * `ww_mutex_lock_interruptible()`: {@link lock}, plus `Interrupted` (`-EINTR`) when the task is
 * signalled while it sleeps (see `Task.signal`).
 *
 * @since 0.1.0
 * @category locking
 */
export const lockInterruptible = (
  m: WwMutex,
  ctx: AcquireCtx
): Effect.Effect<Held<WwMutex>, Deadlock | Already | Interrupted | Invalid> => lockWith(m, ctx, false, true)

/**
 * `ww_mutex_lock_slow()`: lock the contended mutex after backing off (nothing held, so it can only
 * sleep). Strict mode reports a slow lock without a preceding `Deadlock`.
 *
 * @since 0.1.0
 * @category locking
 */
export const lockSlow = (m: WwMutex, ctx: AcquireCtx): Effect.Effect<Held<WwMutex>, Invalid> =>
  Effect.catchTags(lockWith(m, ctx, true, false), {
    Deadlock: (e) => Effect.die(new Error(`ww_mutex_lock_slow(${e.lock}) got -EDEADLK: locks still held`)),
    Already: () => Effect.succeed(heldOf(m)),
    Interrupted: (e) => Effect.die(e)
  })

/**
 * `ww_mutex_lock_slow_interruptible()`: {@link lockSlow}, plus `Interrupted` on a signal.
 *
 * @since 0.1.0
 * @category locking
 */
export const lockSlowInterruptible = (
  m: WwMutex,
  ctx: AcquireCtx
): Effect.Effect<Held<WwMutex>, Interrupted | Invalid> =>
  Effect.catchTags(lockWith(m, ctx, true, true), {
    Deadlock: (e) => Effect.die(new Error(`ww_mutex_lock_slow(${e.lock}) got -EDEADLK: locks still held`)),
    Already: () => Effect.succeed(heldOf(m))
  })

/**
 * `ww_mutex_lock(lock, NULL)`: a plain mutex lock — FIFO, never `Deadlock`/`Already`. Locking a
 * mutex the task already holds is a self-deadlock: reported (a defect) instead of hanging.
 *
 * @since 0.1.0
 * @category locking
 */
export const lockNoCtx = (m: WwMutex): Effect.Effect<Held<WwMutex>, Invalid> =>
  lockWith(m, undefined, false, false) as Effect.Effect<Held<WwMutex>, Invalid>

/**
 * `ww_mutex_lock_interruptible(lock, NULL)`: {@link lockNoCtx}, plus `Interrupted` on a signal.
 *
 * @since 0.1.0
 * @category locking
 */
export const lockNoCtxInterruptible = (m: WwMutex): Effect.Effect<Held<WwMutex>, Interrupted | Invalid> =>
  lockWith(m, undefined, false, true) as Effect.Effect<Held<WwMutex>, Interrupted | Invalid>

/**
 * `ww_mutex_lock(lock, NULL)` as a guard (the Rust `MutexGuard`): locked now, unlocked when the
 * scope closes — also on failure or interruption. For a single ctx-less lock; a transaction uses
 * one acquire context and one scope instead of a scope per lock. The wait stays interruptible.
 *
 * @since 0.1.0
 * @category locking
 */
export const lockNoCtxScoped = (m: WwMutex): Effect.Effect<Held<WwMutex>, Invalid, Scope.Scope> =>
  Effect.map(
    Effect.acquireRelease(
      Effect.withFiber((fiber) => Effect.map(lockNoCtx(m), (held) => ({ held, task: fiber.id }))),
      ({ task }) =>
        Effect.sync(() => {
          if (m.owner === task && m.ctx === undefined) releaseMutex(m) // not unlocked by hand meanwhile
        }),
      { interruptible: true }
    ),
    ({ held }) => held
  )

/**
 * `ww_mutex_trylock(lock, ctx?)`: the witness, or `undefined` when the mutex is held (also by
 * this very ctx — a boolean trylock never reports `-EALREADY`). Never sleeps, never injects.
 *
 * @since 0.1.0
 * @category locking
 */
export const trylock = (m: WwMutex, ctx?: AcquireCtx): Effect.Effect<Held<WwMutex> | undefined, Invalid> =>
  Effect.withFiber((fiber) => {
    const code = trylockFast(m, ctx, fiber.id)
    if (code === Code.OK) return Effect.succeed(heldOf(m))
    if (code === Code.BUSY) return Effect.succeed(undefined)
    return failCode(code, m, ctx) as Effect.Effect<never, Invalid>
  })

/**
 * `ww_mutex_unlock()`: releases `m` and wakes the first waiter. Unlocking an unheld mutex or one
 * owned by another task is a lockdep report (a defect unless strict mode only records).
 *
 * @since 0.1.0
 * @category locking
 */
export const unlock = (m: WwMutex): Effect.Effect<void> =>
  Effect.withFiber((fiber) => (unlockFast(m, fiber.id) === Code.OK ? Effect.void : dieViolation()))

/**
 * Unlocks through the witness (the guard's `drop`): {@link unlock} of the witness's mutex. Needs a
 * `Held<WwMutex>`, so it cannot be called on a lock nobody proved to hold.
 *
 * @since 0.1.0
 * @category locking
 */
export const release = (held: Held<WwMutex>): Effect.Effect<void> => unlock(held.target)

/**
 * Unlocks every mutex `ctx` holds, newest first — the backoff step of the ww protocol (the ticket
 * is kept). Must run in the ctx's task.
 *
 * @since 0.1.0
 * @category locking
 */
export const unlockAll = (ctx: AcquireCtx): Effect.Effect<void> =>
  Effect.withFiber((fiber) => {
    while (ctx.held.length > 0) {
      if (unlockFast(ctx.held[ctx.held.length - 1] as WwMutex, fiber.id) !== Code.OK) return dieViolation()
    }
    return Effect.void
  })

/**
 * `ww_mutex_destroy()`: `Busy` while locked or waited on; `Invalid` when already destroyed. A
 * destroyed mutex can no longer be locked (`Invalid`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const destroy = (m: WwMutex): Effect.Effect<void, Invalid | Busy> =>
  Effect.suspend((): Effect.Effect<void, Invalid | Busy> => {
    if (m.destroyed) return Effect.fail(new Invalid({ what: m.name, reason: "ww_mutex already destroyed" }))
    if (m.owner !== 0 || m.waiters.length > 0) {
      return Effect.fail(new BusyError({ what: m.name, reason: "ww_mutex_destroy() on a locked mutex" }))
    }
    m.destroyed = true
    return Effect.void
  })

export {
  acquireFiniSync,
  acquireInitSync,
  forceUnlockUnsafe,
  heldBy,
  isStrict,
  lockSync,
  SyncCode,
  trylockSync,
  unlockSync
} from "./internal/sync.ts"
