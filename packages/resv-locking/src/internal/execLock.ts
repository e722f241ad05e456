/**
 * One `drm_exec_lock_obj()` step (internal): slow-lock a pending contended object first, accept
 * the prelocked object silently, then lock with the ticket — synchronously when uncontended, by
 * sleeping in the ww core otherwise — recording `-EDEADLK` as the exec's contention.
 *
 * @since 0.1.0
 */
import { Already, Deadlock, type Interrupted, type Invalid } from "@drmkit/core"
import { Effect } from "effect"
import type { Held } from "../Held.ts"
import { drop, type ExecState, type LockItem, retain, track } from "./execCore.ts"
import { type DmaResv, heldKey } from "./resvCore.ts"
import { failCode, sleepOn } from "./shell.ts"
import { type AcquireCtx, Code } from "./state.ts"
import { injectAfterLock, lockEnter } from "./ww.ts"

/** Errors of a lock step. */
export type LockError = Deadlock | Already | Interrupted | Invalid

/** The cached success effect of a resv's witness (no allocation per uncontended lock). */
const succeedHeld = (resv: DmaResv): Effect.Effect<Held<DmaResv>> => {
  let e = heldEffects.get(resv)
  if (e === undefined) {
    e = Effect.succeed(resv[heldKey])
    heldEffects.set(resv, e)
  }
  return e
}
const heldEffects = new WeakMap<DmaResv, Effect.Effect<Held<DmaResv>>>()

/** Records `obj` as contended (with a reference) and fails the step with `Deadlock`. */
const contend = <T extends LockItem>(s: ExecState<T>, obj: T): Effect.Effect<never, Deadlock> => {
  retain(obj)
  s.contended = obj
  s.mustRetry = true
  return Effect.fail(new Deadlock({ lock: obj.resv.name }))
}

/** Tracks `obj` after a lock that succeeded by sleeping (injection already ran in the core). */
const afterSleep = <T extends LockItem>(
  s: ExecState<T>,
  obj: T,
  slept: Effect.Effect<unknown, Deadlock | Interrupted>
): Effect.Effect<Held<DmaResv>, Deadlock | Interrupted> =>
  Effect.matchEffect(slept, {
    onSuccess: () => {
      track(s, obj)
      return succeedHeld(obj.resv)
    },
    onFailure: (e): Effect.Effect<never, Deadlock | Interrupted> =>
      e._tag === "Deadlock" ? contend(s, obj) : Effect.fail(e)
  })

/**
 * Locks `obj` with the ticket (the prelocked object is accepted without a second lock). Returns
 * the witness itself when the lock was taken synchronously (the uncontended fast path), or an
 * Effect that sleeps, backs off or fails.
 */
export const lockNow = <T extends LockItem>(
  s: ExecState<T>,
  obj: T,
  ticket: AcquireCtx
): Held<DmaResv> | Effect.Effect<Held<DmaResv>, LockError> => {
  const resv = obj.resv
  if (obj === s.prelocked) {
    s.prelocked = undefined
    drop(obj)
    return resv[heldKey]
  }
  const m = resv.mutex
  const code = lockEnter(m, ticket, s.task, false)
  if (code === Code.OK) {
    if (ticket.inject && injectAfterLock(m, ticket)) return contend(s, obj)
    track(s, obj)
    return resv[heldKey]
  }
  if (code === Code.BUSY) return afterSleep(s, obj, sleepOn(m, ticket, s.task, s.interruptible))
  if (code === Code.ALREADY) {
    return s.ignoreDuplicates ? resv[heldKey] : Effect.fail(new Already({ lock: resv.name }))
  }
  return failCode(code, m, ticket)
}

/** {@link lockNow} as an Effect. */
export const lockTicketed = <T extends LockItem>(
  s: ExecState<T>,
  obj: T,
  ticket: AcquireCtx
): Effect.Effect<Held<DmaResv>, LockError> => {
  const r = lockNow(s, obj, ticket)
  return Effect.isEffect(r) ? r : succeedHeld(obj.resv)
}

/**
 * Slow-locks the pending contended object `c` (the reference taken at contention is kept as the
 * prelocked marker's), then locks `obj`. An error of the slow lock drops `c` and is returned for
 * `obj`. `c` stays recorded as contended while the slow lock sleeps, so a fiber interrupted there
 * still drops its reference in `fini`. Models `drm_exec_lock_contended()`.
 */
export const lockContendedThen = <T extends LockItem>(
  s: ExecState<T>,
  c: T,
  obj: T,
  ticket: AcquireCtx
): Effect.Effect<Held<DmaResv>, LockError> => {
  const m = c.resv.mutex
  const code = lockEnter(m, ticket, s.task, true)
  const prelock = (): Effect.Effect<Held<DmaResv>, LockError> => {
    s.contended = undefined
    track(s, c)
    s.prelocked = c
    return lockTicketed(s, obj, ticket)
  }
  const giveUp = <E>(e: E): Effect.Effect<never, E> => {
    s.contended = undefined
    drop(c)
    return Effect.fail(e)
  }
  if (code === Code.OK) return prelock()
  if (code === Code.BUSY) {
    return Effect.matchEffect(sleepOn(m, ticket, s.task, s.interruptible), { onSuccess: prelock, onFailure: giveUp })
  }
  if (code === Code.ALREADY) {
    s.contended = undefined
    drop(c)
    return lockTicketed(s, obj, ticket)
  }
  s.contended = undefined
  drop(c)
  return failCode(code, m, ticket)
}
