/**
 * The synchronous ww_mutex fast path (internal, plain TypeScript, no Effect, no allocation on the
 * uncontended path). The Effect shell in `WwMutex.ts` and the drm_exec helper call these; a lock
 * attempt that would block returns `Code.BUSY` and the caller queues a waiter (see `queue.ts`).
 *
 * Ownership is by task id (a fiber id). Strict-mode checks run only when the ctx (or, without a
 * ctx, the global config) has strict mode on; the always-on checks guard state integrity.
 *
 * @since 0.1.0
 */
import { config, violation } from "./lockdep.ts"
import { acquireAt, checkWaiters, release } from "./queue.ts"
import { AcquireCtx, Code, type WwClass, type WwMutex } from "./state.ts"

/**
 * A ctx is owned by the task that initialised it (lockdep treats the ctx itself as a lock held by
 * that task): a lock, done or fini through it from another task is reported. Returns true when the
 * operation aborts.
 */
const foreignCtx = (ctx: AcquireCtx, task: number, op: string, lock?: string): boolean =>
  task !== ctx.task &&
  violation("ctx-foreign-task", `${op} with the acquire ctx of task ${ctx.task} by task ${task}`, lock, task)

/**
 * The `DEBUG_WW_MUTEXES` checks of a ctx lock (`ww_mutex_lock_acquired()` and friends). A
 * trylock skips the slow-path and mixing checks (lockdep records no dependency for trylocks).
 */
const ctxChecks = (m: WwMutex, ctx: AcquireCtx, task: number, slow: boolean, trylock: boolean): boolean => {
  if (foreignCtx(ctx, task, `ww_mutex_lock(${m.name})`, m.name)) return true
  if (ctx.done && violation("lock-after-done", `ww_mutex_lock(${m.name}) after ww_acquire_done()`, m.name, task))
    return true
  const c = ctx.contending
  if (c !== undefined) {
    if (c !== m) {
      const msg = `ww_mutex_lock(${m.name}) after -EDEADLK on ${c.name} without backing off first`
      if (violation("lock-after-deadlock", msg, m.name, task)) return true
    } else if (ctx.held.length > 0) {
      const msg = `relocking contended ${m.name} while still holding ${ctx.held.length} lock(s)`
      if (violation("relock-contended-while-holding", msg, m.name, task)) return true
    }
  } else if (slow) {
    const msg = `ww_mutex_lock_slow(${m.name}) without a preceding -EDEADLK`
    if (violation("slow-without-deadlock", msg, m.name, task)) return true
  }
  if (trylock) return false
  const n = m.cls.noCtxHeldByTask.get(task)
  if (n !== undefined && n > 0) {
    const msg = `ww_mutex_lock(${m.name}, ctx) while holding ${n} ctx-less lock(s) of ${m.cls.name}`
    if (violation("mixed-ctx-and-noctx", msg, m.name, task)) return true
  }
  return false
}

const noCtxChecks = (m: WwMutex, task: number): boolean => {
  const n = m.cls.noCtxHeldByTask.get(task)
  if (n !== undefined && n > 0 && m.owner !== task) {
    const msg = `possible recursive locking: blocking ww_mutex_lock(${m.name}, NULL) while holding ${n} other ctx-less lock(s) of ${m.cls.name}`
    if (violation("same-class-nesting", msg, m.name, task)) return true
  }
  const ctx = m.cls.ctxByTask.get(task)
  if (ctx !== undefined && !ctx.finished && ctx.held.length > 0) {
    const msg = `blocking ww_mutex_lock(${m.name}, NULL) while holding ${ctx.held.length} lock(s) of ${m.cls.name} with a ctx`
    if (violation("mixed-ctx-and-noctx", msg, m.name, task)) return true
  }
  return false
}

const validate = (m: WwMutex, ctx: AcquireCtx | undefined, task: number): Code => {
  if (m.destroyed) return Code.DESTROYED
  if (ctx === undefined) return Code.OK
  if (ctx.cls !== m.cls) {
    if (ctx.strict)
      violation("wrong-class", `ctx of class ${ctx.cls.name} used on ${m.name} of class ${m.cls.name}`, m.name, task)
    return Code.WRONG_CLASS
  }
  if (ctx.finished && violation("lock-after-fini", `${m.name} locked with a finished acquire ctx`, m.name, task)) {
    return Code.VIOLATION
  }
  return Code.OK
}

/**
 * Tries to lock `m` for `task` with `ctx` (or none) without blocking. Returns OK (acquired),
 * ALREADY (this ctx holds it), BUSY (must wait), DESTROYED / WRONG_CLASS (Invalid) or VIOLATION.
 * Models the entry of `__ww_mutex_lock()` up to the fast-path acquisition. `slow` marks
 * `ww_mutex_lock_slow()` for the strict checks. Deadlock injection is separate
 * ({@link injectAfterLock}).
 */
export const lockEnter = (m: WwMutex, ctx: AcquireCtx | undefined, task: number, slow: boolean): Code => {
  const v = validate(m, ctx, task)
  if (v !== Code.OK) return v
  if (ctx !== undefined) {
    if (m.ctx === ctx) return Code.ALREADY
    if (ctx.strict && ctxChecks(m, ctx, task, slow, false)) return Code.VIOLATION
    if (ctx.held.length === 0) ctx.wounded = false
  } else if (config.strict && noCtxChecks(m, task)) return Code.VIOLATION
  if (m.owner === 0) {
    acquireAt(m, ctx, task)
    if (ctx !== undefined && m.waiters.length > 0) checkWaiters(m, ctx)
    return Code.OK
  }
  if (
    m.owner === task &&
    violation("recursive-lock", `recursive locking of ${m.name}: task ${task} already holds it`, m.name, task)
  ) {
    return Code.VIOLATION
  }
  return Code.BUSY
}

/**
 * `ww_mutex_trylock(lock, ctx?)`: OK or BUSY (also on a lock this ctx/task already holds), never
 * waits, never injects; DESTROYED / WRONG_CLASS / VIOLATION as for {@link lockEnter}.
 */
export const trylockFast = (m: WwMutex, ctx: AcquireCtx | undefined, task: number): Code => {
  const v = validate(m, ctx, task)
  if (v !== Code.OK) return v
  // the kernel resets a ctx's wound before the attempt, whether or not it succeeds
  if (ctx !== undefined && ctx.held.length === 0) ctx.wounded = false
  if (m.owner !== 0) return Code.BUSY
  if (ctx?.strict && ctxChecks(m, ctx, task, false, true)) return Code.VIOLATION
  acquireAt(m, ctx, task)
  if (ctx !== undefined && m.waiters.length > 0) checkWaiters(m, ctx)
  return Code.OK
}

/**
 * Models the `CONFIG_DEBUG_WW_MUTEX_SLOWPATH` injection after a successful `ww_mutex_lock()` that
 * left `acquired > 1`: every countdown expiry unlocks `m` again, records it as contended and asks
 * the caller to return `-EDEADLK`; the interval grows 1, 3, 10, 35, 122, ...
 */
export const injectAfterLock = (m: WwMutex, ctx: AcquireCtx): boolean => {
  if (!ctx.inject || ctx.held.length <= 1) return false
  if (ctx.injectCountdown-- !== 0) return false
  ctx.injectInterval = nextInterval(ctx.injectInterval)
  ctx.injectCountdown = ctx.injectInterval
  release(m)
  ctx.contending = m
  return true
}

/** The kernel's injection interval growth: `i*3.5` in integers, capped at `UINT_MAX`. */
export const nextInterval = (i: number): number => (i > 0xffffffff / 4 ? 0xffffffff : i * 2 + i + Math.floor(i / 2))

/**
 * `ww_mutex_unlock()` by `task`: OK, or VIOLATION for an unheld lock or a foreign owner (then
 * nothing changed unless strict mode is in record-only mode, which unlocks like the kernel does
 * after its WARN).
 */
export const unlockFast = (m: WwMutex, task: number): Code => {
  const owner = m.owner
  if (owner === task) {
    release(m)
    return Code.OK
  }
  if (owner === 0) {
    return violation("unlock-unheld", `ww_mutex_unlock(${m.name}): not locked`, m.name, task) ? Code.VIOLATION : Code.OK
  }
  const msg = `ww_mutex_unlock(${m.name}) by task ${task}, owner is task ${owner}`
  if (violation("unlock-non-owner", msg, m.name, task)) return Code.VIOLATION
  release(m)
  return Code.OK
}

/** Options of an acquire context. */
export interface CtxOptions {
  /** Deadlock injection for this ctx (default: the global switch). */
  readonly injection?: boolean
  /** Strict checks for this ctx (default: the global switch). */
  readonly strict?: boolean
}

/** `ww_acquire_init()`: a fresh ticket of `cls` for `task`; undefined on an aborting violation. */
export const ctxInit = (cls: WwClass, task: number, options?: CtxOptions): AcquireCtx | undefined => {
  const strict = options?.strict ?? config.strict
  const prev = cls.ctxByTask.get(task)
  if (strict && prev !== undefined && !prev.finished) {
    const msg = `ww_acquire_init(${cls.name}): task ${task} already has an acquire ctx of this class (stamp ${prev.stamp})`
    if (violation("nested-ctx", msg, undefined, task)) return undefined
  }
  cls.stamp = (cls.stamp + 1) >>> 0
  const ctx = new AcquireCtx(cls, cls.stamp, task, options?.injection ?? config.injection, strict)
  cls.ctxByTask.set(task, ctx)
  return ctx
}

/** `ww_acquire_done()`: OK or VIOLATION (also from a task that does not own the ctx, strict mode). */
export const ctxDone = (ctx: AcquireCtx, task: number): Code => {
  if (ctx.strict) {
    if (foreignCtx(ctx, task, "ww_acquire_done()")) return Code.VIOLATION
    if (ctx.finished && violation("done-after-fini", "ww_acquire_done() after ww_acquire_fini()", undefined, task))
      return Code.VIOLATION
    if (ctx.done && violation("done-twice", "ww_acquire_done() called twice", undefined, task)) return Code.VIOLATION
  }
  ctx.done = true
  return Code.OK
}

/**
 * `ww_acquire_fini()` by `task`: releases whatever the ctx still holds (reverse lock order) so
 * nothing leaks; in strict mode holding locks (when `expectEmpty`) or finishing twice is reported.
 * A task that does not own the ctx is always reported (it would release another task's locks),
 * like an unlock by a non-owner.
 */
export const ctxFini = (ctx: AcquireCtx, task: number, expectEmpty: boolean): Code => {
  if (foreignCtx(ctx, task, "ww_acquire_fini()")) return Code.VIOLATION
  if (ctx.finished) {
    if (ctx.strict && violation("fini-twice", "ww_acquire_fini() called twice", undefined, task)) return Code.VIOLATION
    return Code.OK
  }
  let code: Code = Code.OK
  const n = ctx.held.length
  if (n > 0 && expectEmpty && ctx.strict) {
    const names = ctx.held.map((m) => m.name).join(", ")
    if (
      violation("fini-with-locks-held", `ww_acquire_fini() with ${n} lock(s) held: ${names}`, ctx.held[0]?.name, task)
    ) {
      code = Code.VIOLATION
    }
  }
  while (ctx.held.length > 0) release(ctx.held[ctx.held.length - 1] as WwMutex)
  ctx.finished = true
  ctx.contending = undefined
  if (ctx.cls.ctxByTask.get(ctx.task) === ctx) ctx.cls.ctxByTask.delete(ctx.task)
  return code
}
