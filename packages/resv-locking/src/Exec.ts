/**
 * `drm_exec`: lock a set of reservation objects as one transaction, backing off on contention.
 *
 * ```ts
 * import { DmaFence, DmaResv, Exec } from "@drmkit/resv-locking"
 * import { Effect } from "effect"
 *
 * const ring = DmaFence.contextAlloc("gfx")
 * const submit = (bos: ReadonlyArray<DmaResv.DmaResv>) =>
 *   Effect.scoped(
 *     Effect.gen(function* () {
 *       const exec = yield* Exec.make({ interruptible: true })   // drm_exec_init; fini on scope close
 *       yield* Exec.untilAllLocked(exec, Exec.prepareArray(exec, bos, 1))
 *       const job = DmaFence.make(ring)
 *       for (const bo of Exec.lockedObjects(exec)) {
 *         yield* DmaResv.addFence(Exec.held(exec, bo), job, "write")
 *       }
 *     })
 *   ) // one reverse-order bulk unlock
 * ```
 *
 * `untilAllLocked` runs the body; when a lock reported `Deadlock` it unlocks everything in reverse
 * order (keeping the ticket and its age), and re-runs the body, whose first lock call slow-locks
 * the contended object first (an error of that slow lock surfaces on that call). Without
 * contention it marks the ticket done and returns with everything locked. Only the combinator
 * handles `Deadlock`: a body that swallows one is re-run all the same.
 *
 * The transaction owns one Scope finalizer and one bulk release; uncontended locks run the
 * synchronous ww fast path, and Effect machinery is used only to sleep or back off.
 *
 * @since 0.1.0
 */
import { CurrentTraceSink, checkInt, Deadlock, Invalid, type TraceSink, traceNow } from "@drmkit/core"
import { Cause, Effect, Exit, type Scope } from "effect"
import type { Held } from "./Held.ts"
import { ExecState, type LockItem, releaseAll, unlockAll, unlockObj } from "./internal/execCore.ts"
import { type LockError, lockContendedThen, lockNow } from "./internal/execLock.ts"
import { asOwner, type Exec, foreignUse } from "./internal/execQueries.ts"
import type { DmaResv } from "./internal/resvCore.ts"
import { maxReserve, reserveFencesSync } from "./internal/resvOps.ts"
import { dieViolation } from "./internal/shell.ts"
import { Code } from "./internal/state.ts"
import { complete, instant } from "./internal/trace.ts"
import { ctxDone, ctxFini, ctxInit } from "./internal/ww.ts"
import { type AcquireCtx, reservationWwClass } from "./WwMutex.ts"

export type {
  /**
   * A lockable object: anything with a `resv` (a bare `DmaResv` qualifies), with optional
   * reference-count hooks.
   *
   * @since 0.1.0
   */
  LockItem
} from "./internal/execCore.ts"

export {
  /** Opens a sub-list (2021 transaction-lock-list RFC). @since 0.1.0 */
  beginSubList,
  /** An exec transaction (`struct drm_exec`). @since 0.1.0 */
  type Exec,
  /** The witness of an object this exec holds. @since 0.1.0 */
  held,
  /** The witness of an object this exec holds, or `undefined`. @since 0.1.0 */
  heldOf,
  /** `drm_exec_is_contended()`. @since 0.1.0 */
  isContended,
  /** `drm_exec_for_each_locked_object()`. @since 0.1.0 */
  lockedObjects,
  /** `drm_exec_for_each_locked_object_reverse()`. @since 0.1.0 */
  lockedObjectsReverse,
  /** Keeps a sub-list's objects locked in the parent. @since 0.1.0 */
  mergeSubList,
  /** `drm_exec_obj()`. @since 0.1.0 */
  obj,
  /** Backoffs so far. @since 0.1.0 */
  retries,
  /** A sub-list handle. @since 0.1.0 */
  type Sub,
  /** `drm_exec_ticket()`. @since 0.1.0 */
  ticket,
  /** Batch-unlocks a sub-list. @since 0.1.0 */
  unlockSubList,
  /** Runs a body with a sub-list. @since 0.1.0 */
  withSubList
} from "./internal/execQueries.ts"

/**
 * Options of {@link make}: the `DRM_EXEC_*` flags plus per-transaction test switches.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** `DRM_EXEC_INTERRUPTIBLE_WAIT`: every lock (and the slow lock) may fail with `Interrupted`. */
  readonly interruptible?: boolean
  /** `DRM_EXEC_IGNORE_DUPLICATES`: locking an object this exec already holds succeeds quietly. */
  readonly ignoreDuplicates?: boolean
  /** Deadlock injection for this ticket (default: `Lockdep`'s global switch). */
  readonly injection?: boolean
  /** Strict checks for this ticket (default: `Lockdep`'s global switch). */
  readonly strict?: boolean
}

class ExecImpl<T extends LockItem> implements Exec<T> {
  readonly state: ExecState<T>
  constructor(state: ExecState<T>) {
    this.state = state
  }
}

const die = (message: string): Effect.Effect<never> => Effect.die(new Error(`drm_exec: ${message}`))

/**
 * Creates a transaction without a ticket yet (the loop takes it). Models `drm_exec_init()`. Pair
 * with {@link fini}, or use {@link make}.
 *
 * @since 0.1.0
 * @category constructors
 */
export const init = <T extends LockItem = LockItem>(options: Options = {}): Effect.Effect<Exec<T>> =>
  Effect.withFiber((fiber) =>
    Effect.succeed(
      new ExecImpl(
        new ExecState<T>(fiber.id, {
          interruptible: options.interruptible === true,
          ignoreDuplicates: options.ignoreDuplicates === true,
          injection: options.injection,
          strict: options.strict
        })
      )
    )
  )

/** `drm_exec_fini()` on the state, on behalf of its task (also from a scope finalizer). */
const finiState = <T extends LockItem>(s: ExecState<T>): Effect.Effect<void> => {
  if (s.phase === "fini") return Effect.void
  releaseAll(s)
  s.phase = "fini"
  const t = s.ticket
  return t !== undefined && ctxFini(t, s.task, false) !== Code.OK ? dieViolation() : Effect.void
}

/**
 * Ends the transaction in any state: unlocks every tracked object in reverse order, drops every
 * reference (tracked, prelocked, pending contended) and finishes the ticket if the loop ever took
 * one. A second call is a no-op. Only the exec's task may call it (a defect otherwise: it would
 * release another task's locks). Models `drm_exec_fini()`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const fini = <T extends LockItem>(exec: Exec<T>): Effect.Effect<void> =>
  asOwner(exec, (s) => Effect.suspend(() => finiState(s)))

/**
 * `drm_exec_init()` now and `drm_exec_fini()` when the Scope closes: {@link init} with the
 * transaction's single finalizer, which releases everything in reverse order on success, failure
 * or interruption (whichever fiber closes the scope).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <T extends LockItem = LockItem>(
  options: Options = {}
): Effect.Effect<Exec<T>, never, Scope.Scope> =>
  Effect.acquireRelease(init<T>(options), (exec) => Effect.suspend(() => finiState(exec.state)))

/**
 * The loop head's first half (`drm_exec_cleanup()`): the first pass takes the ticket; a loop on an
 * exec that already finished its loop (or was finished) is a defect. The backoff itself runs in
 * {@link untilAllLocked} after a contended pass.
 */
const enterPass = <T extends LockItem>(s: ExecState<T>): Effect.Effect<void> => {
  if (s.phase === "init") {
    const opts = {
      ...(s.injection === undefined ? {} : { injection: s.injection }),
      ...(s.strict === undefined ? {} : { strict: s.strict })
    }
    const t = ctxInit(reservationWwClass, s.task, opts)
    if (t === undefined) return dieViolation()
    s.ticket = t
    s.phase = "locking"
    return Effect.void
  }
  if (s.phase !== "locking") return die(`drm_exec_until_all_locked() on an exec that is ${s.phase}`)
  return Effect.void
}

const deadlockIn = (cause: Cause.Cause<unknown>): boolean =>
  cause.reasons.some((r) => Cause.isFailReason(r) && r.error instanceof Deadlock)

/**
 * The retry loop (`drm_exec_until_all_locked` + `drm_exec_retry_on_contention`): runs `body`; if a
 * lock of this pass recorded contention, unlocks everything in reverse order (keeping the ticket)
 * and runs `body` again; otherwise marks the ticket done (`ww_acquire_done`) and returns `body`'s
 * result with everything still locked. A failure other than the backoff (`Interrupted`, `Already`,
 * `Invalid`, the caller's own errors) ends the loop; the locks stay held until {@link fini}.
 *
 * @returns the body's value; its errors without `Deadlock` (a `Deadlock` that no exec lock
 *   recorded is a defect: only exec locks may back off inside the loop).
 * @since 0.1.0
 * @category locking
 */
export const untilAllLocked = <T extends LockItem, A, E, R>(
  exec: Exec<T>,
  body: Effect.Effect<A, E, R>
): Effect.Effect<A, Exclude<E, Deadlock>, R> =>
  asOwner(exec, (s) =>
    Effect.flatMap(Effect.service(CurrentTraceSink), (sink) => {
      const start = sink.enabled ? traceNow(sink) : 0
      const pass: Effect.Effect<A, Exclude<E, Deadlock>, R> = Effect.flatMap(enterPass(s), () =>
        Effect.flatMap(Effect.exit(body), (exit) => {
          if (Exit.isFailure(exit) && Cause.hasInterrupts(exit.cause))
            return Effect.failCause(exit.cause as Cause.Cause<never>)
          if (s.mustRetry) {
            backOff(s, sink)
            return pass
          }
          if (Exit.isFailure(exit)) {
            if (deadlockIn(exit.cause)) return die("Deadlock without a recorded contended object")
            return Effect.failCause(exit.cause as Cause.Cause<Exclude<E, Deadlock>>)
          }
          return Effect.as(allLocked(s, sink, start), exit.value)
        })
      )
      return pass
    })
  )

/**
 * The loop head after a contended pass (`drm_exec_cleanup()`): unlock everything in reverse order
 * and drop the references, keeping the ticket; the contended object stays recorded for the next
 * pass's first lock call.
 */
const backOff = <T extends LockItem>(s: ExecState<T>, sink: TraceSink): void => {
  if (sink.enabled) {
    const args = { contended: s.contended?.resv.name, retry: s.retries + 1, stamp: s.ticket?.stamp }
    instant(sink, "drm_exec", "drm_exec_backoff", s.task, args)
  }
  unlockAll(s)
  s.mustRetry = false
  s.retries++
}

/** The loop head after a pass without contention: `ww_acquire_done()` and leave the loop. */
const allLocked = <T extends LockItem>(s: ExecState<T>, sink: TraceSink, start: number): Effect.Effect<void> => {
  const t = s.ticket as AcquireCtx
  if (ctxDone(t, s.task) !== Code.OK) return dieViolation()
  s.phase = "done"
  if (sink.enabled) {
    const args = { objects: s.objects.length, retries: s.retries, stamp: t.stamp }
    complete(sink, "drm_exec", "drm_exec_transaction", s.task, start, args)
  }
  return Effect.void
}

/** The checks every lock call starts with: the ticket, or the Effect to return instead. */
const enter = <T extends LockItem>(
  s: ExecState<T>,
  task: number,
  obj: T
): AcquireCtx | Effect.Effect<never, LockError> => {
  if (task !== s.task) return foreignUse(s, task)
  const t = s.ticket
  if (t === undefined || s.phase === "init") return die("drm_exec_lock_obj() outside drm_exec_until_all_locked()")
  if (s.phase === "fini") return die("drm_exec_lock_obj() after drm_exec_fini()")
  if (s.mustRetry) return Effect.fail(new Deadlock({ lock: s.contended?.resv.name ?? obj.resv.name }))
  return t
}

/** One `drm_exec_lock_obj()`: the witness when locked synchronously, else an Effect. */
const lockOne = <T extends LockItem>(
  s: ExecState<T>,
  obj: T,
  t: AcquireCtx
): Held<DmaResv> | Effect.Effect<Held<DmaResv>, LockError> => {
  const c = s.contended
  return c === undefined ? lockNow(s, obj, t) : lockContendedThen(s, c, obj, t)
}

const lockStep = <T extends LockItem>(exec: Exec<T>, obj: T): Effect.Effect<Held<DmaResv>, LockError> =>
  Effect.withFiber((fiber) => {
    const s = exec.state
    const t = enter(s, fiber.id, obj)
    if (Effect.isEffect(t)) return t
    const r = lockOne(s, obj, t)
    return Effect.isEffect(r) ? r : Effect.succeed(r)
  })

/**
 * The reservation half of `drm_exec_prepare_obj()`: undefined, or the failure (object unlocked).
 * Zero slots means "lock only", as drm_gpuvm's `exec_prepare_obj()` helper does.
 */
const reserveOrUndo = <T extends LockItem>(
  s: ExecState<T>,
  obj: T,
  held: Held<DmaResv>,
  numFences: number
): Effect.Effect<never, Invalid> | undefined => {
  if (numFences === 0) return undefined
  const err = reserveFencesSync(held, numFences)
  if (err === undefined) return undefined
  unlockObj(s, obj)
  return Effect.fail(err)
}

/** `prepare` of `objs[i..]`, synchronously while locks are uncontended. */
const prepareFrom = <T extends LockItem>(
  exec: Exec<T>,
  objs: ReadonlyArray<T>,
  numFences: number,
  from: number
): Effect.Effect<void, LockError> =>
  Effect.withFiber((fiber) => {
    const s = exec.state
    for (let i = from; i < objs.length; i++) {
      const obj = objs[i] as T
      const t = enter(s, fiber.id, obj)
      if (Effect.isEffect(t)) return t
      const r = lockOne(s, obj, t)
      if (Effect.isEffect(r)) {
        return Effect.flatMap(
          r,
          (held) => reserveOrUndo(s, obj, held, numFences) ?? prepareFrom(exec, objs, numFences, i + 1)
        )
      }
      const failed = reserveOrUndo(s, obj, r, numFences)
      if (failed !== undefined) return failed
    }
    return Effect.void
  })

/**
 * Locks `obj` in the transaction and tracks it (with a reference). A pending contended object is
 * slow-locked first. Models `drm_exec_lock_obj()`.
 *
 * @returns the witness; fails with `Deadlock` (handled by {@link untilAllLocked}), `Already`
 *   (already locked by this exec, unless `ignoreDuplicates`), `Interrupted` (interruptible execs)
 *   or `Invalid` (destroyed resv). Calling it outside the loop is a defect; after the loop, a
 *   strict-mode violation (lock after `ww_acquire_done`).
 * @since 0.1.0
 * @category locking
 */
export const lock = <T extends LockItem>(exec: Exec<T>, obj: T): Effect.Effect<Held<DmaResv>, LockError> =>
  lockStep(exec, obj)

/**
 * {@link lock}, then reserve `numFences` slots (relative to the current count, not additive); if
 * the reservation fails the object is unlocked again. A bad `numFences` is rejected before
 * anything is locked; 0 only locks (drm_gpuvm's `exec_prepare_obj()` convenience — the kernel's
 * `drm_exec_prepare_obj(obj, 0)` would WARN in `dma_resv_reserve_fences()`). Models
 * `drm_exec_prepare_obj()`.
 *
 * @since 0.1.0
 * @category locking
 */
export const prepare = <T extends LockItem>(
  exec: Exec<T>,
  obj: T,
  numFences: number
): Effect.Effect<Held<DmaResv>, LockError> => {
  const bad = checkInt("drm_exec_prepare_obj num_fences", numFences, { min: 0, max: maxReserve })
  if (bad !== undefined) return Effect.fail(bad)
  return Effect.flatMap(
    lockStep(exec, obj),
    (held) => reserveOrUndo(exec.state, obj, held, numFences) ?? Effect.succeed(held)
  )
}

/**
 * {@link prepare} for each object, stopping at the first failure. Models
 * `drm_exec_prepare_array()`.
 *
 * @since 0.1.0
 * @category locking
 */
export const prepareArray = <T extends LockItem>(
  exec: Exec<T>,
  objs: ReadonlyArray<T>,
  numFences: number
): Effect.Effect<void, LockError> => {
  const bad = checkInt("drm_exec_prepare_array num_fences", numFences, { min: 0, max: maxReserve })
  if (bad !== undefined) return Effect.fail(bad)
  return prepareFrom(exec, objs, numFences, 0)
}

/**
 * Unlocks and forgets `obj` (meant for recently locked objects). Models `drm_exec_unlock_obj()`.
 *
 * @returns fails with `Invalid` when the exec does not hold `obj`; a defect from a task other than
 *   the exec's.
 * @since 0.1.0
 * @category locking
 */
export const unlock = <T extends LockItem>(exec: Exec<T>, obj: T): Effect.Effect<void, Invalid> =>
  asOwner(exec, (s) =>
    unlockObj(s, obj)
      ? Effect.void
      : Effect.fail(new Invalid({ what: "drm_exec_unlock_obj", reason: `${obj.resv.name} is not locked by this exec` }))
  )
