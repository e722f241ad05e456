/**
 * Ownership changes and wait queues of the ww core (internal): acquire/release bookkeeping, the
 * stamp-ordered waiter list, and the wait-die / wound-wait decisions of the kernel's
 * `kernel/locking/ww_mutex.h` (`__ww_mutex_add_waiter`, `__ww_mutex_check_kill`,
 * `__ww_mutex_check_waiters`, `__ww_mutex_die`, `__ww_mutex_wound`), re-expressed for fibers.
 *
 * @since 0.1.0
 */
import { pending } from "./signals.ts"
import { type AcquireCtx, Code, type Waiter, type WwMutex } from "./state.ts"

/** `a` is younger than `b` (bigger stamp; wrap-safe signed difference of u32 stamps). */
export const younger = (a: AcquireCtx, b: AcquireCtx): boolean => ((a.stamp - b.stamp) | 0) > 0

/** Makes `task` (through `ctx`, if any) the owner of `m`. Models `ww_mutex_lock_acquired()`. */
export const acquireAt = (m: WwMutex, ctx: AcquireCtx | undefined, task: number): void => {
  m.owner = task
  if (ctx !== undefined) {
    m.ctx = ctx
    ctx.held.push(m)
    ctx.contending = undefined
  } else {
    // ctx-less holds are counted per task for the mixing checks (a ctx may be strict on its own)
    m.cls.noCtxHeldByTask.set(task, (m.cls.noCtxHeldByTask.get(task) ?? 0) + 1)
  }
}

/**
 * Resumes a sleeping waiter so it re-evaluates (`wake_up_process`). A waiter that is not asleep
 * yet (between its check and its sleep) is marked so it re-checks instead of sleeping.
 */
export const wakeWaiter = (w: Waiter): void => {
  const wake = w.wake
  if (wake !== undefined) {
    w.wake = undefined
    wake()
  } else w.kicked = true
}

const dropFromCtx = (ctx: AcquireCtx, m: WwMutex): void => {
  const held = ctx.held
  const last = held.length - 1
  if (held[last] === m) held.pop()
  else {
    const i = held.lastIndexOf(m)
    if (i >= 0) held.splice(i, 1)
  }
}

const removeWaiter = (w: Waiter): void => {
  const q = w.mutex.waiters
  if (q[0] === w) q.shift()
  else {
    const i = q.indexOf(w)
    if (i >= 0) q.splice(i, 1)
  }
}

/**
 * Releases `m` without any ownership check and wakes (or, after a failed wake-up, hands the lock
 * directly to) the first waiter. Models `__ww_mutex_unlock()` + `__mutex_unlock_slowpath()`.
 */
export const release = (m: WwMutex): void => {
  const ctx = m.ctx
  if (ctx !== undefined) {
    dropFromCtx(ctx, m)
    m.ctx = undefined
  } else {
    const n = m.cls.noCtxHeldByTask.get(m.owner) ?? 1
    if (n <= 1) m.cls.noCtxHeldByTask.delete(m.owner)
    else m.cls.noCtxHeldByTask.set(m.owner, n - 1)
  }
  m.owner = 0
  const first = m.waiters[0]
  if (first === undefined) {
    m.handoff = false
    return
  }
  if (m.handoff) {
    m.handoff = false
    m.waiters.shift()
    acquireAt(m, first.ctx, first.task)
    first.granted = true
  } else first.unlockWoken = true
  wakeWaiter(first)
}

/** Records `-EDEADLK` for `ctx` on `m` when it holds locks. Models `__ww_mutex_kill()`. */
const kill = (m: WwMutex, ctx: AcquireCtx): Code => {
  if (ctx.held.length === 0) return Code.OK
  ctx.contending = m
  return Code.DEADLK
}

/** Wait-die: wake a younger waiter that holds locks so it dies. Models `__ww_mutex_die()`. */
const die = (w: Waiter, waiterCtx: AcquireCtx, ctx: AcquireCtx): boolean => {
  if (!ctx.cls.isWaitDie) return false
  if (waiterCtx.held.length > 0 && younger(waiterCtx, ctx)) wakeWaiter(w)
  return true
}

/**
 * Wound-wait: `ctx` (holding locks) wounds the younger `hold` that owns `m`, and wakes it if it
 * sleeps on another lock. Models `__ww_mutex_wound()`.
 */
const wound = (m: WwMutex, ctx: AcquireCtx, hold: AcquireCtx | undefined): boolean => {
  if (hold === undefined || m.owner === 0) return false
  if (ctx.held.length > 0 && younger(hold, ctx)) {
    hold.wounded = true
    const sleeper = hold.sleeping
    if (sleeper !== undefined) wakeWaiter(sleeper)
    return true
  }
  return false
}

/**
 * After `ctx` acquired `m` with waiters queued: let a younger waiter die (wait-die) or wound
 * ourselves for an older one (wound-wait). Models `__ww_mutex_check_waiters()`.
 */
export const checkWaiters = (m: WwMutex, ctx: AcquireCtx): void => {
  for (const w of m.waiters) {
    const wctx = w.ctx
    if (wctx === undefined) continue
    if (die(w, wctx, ctx) || wound(m, wctx, ctx)) break
  }
}

/**
 * Queues `w`: ctx-less waiters FIFO at the tail; ctx waiters before the first younger ctx waiter
 * (ctx-less ones are skipped). Wait-die dies at once behind an older ctx waiter; wound-wait
 * wounds a younger holder. Models `__ww_mutex_add_waiter()`. Returns OK or DEADLK.
 */
export const addWaiter = (w: Waiter): Code => {
  const m = w.mutex
  const q = m.waiters
  const ctx = w.ctx
  if (ctx === undefined) {
    q.push(w)
    return Code.OK
  }
  const waitDie = ctx.cls.isWaitDie
  let pos = q.length
  for (let i = q.length - 1; i >= 0; i--) {
    const cur = q[i] as Waiter
    const cctx = cur.ctx
    if (cctx === undefined) continue
    if (younger(ctx, cctx)) {
      if (waitDie && kill(m, ctx) === Code.DEADLK) return Code.DEADLK
      break
    }
    pos = i
    die(cur, cctx, ctx)
  }
  q.splice(pos, 0, w)
  if (!waitDie) wound(m, ctx, m.ctx)
  return Code.OK
}

/** Whether `w` must back off now. Models `__ww_mutex_check_kill()`. */
const checkKill = (w: Waiter, ctx: AcquireCtx): Code => {
  if (ctx.held.length === 0) return Code.OK
  const m = w.mutex
  if (!ctx.cls.isWaitDie) return ctx.wounded ? kill(m, ctx) : Code.OK
  const hold = m.ctx
  if (hold !== undefined && younger(ctx, hold)) return kill(m, ctx)
  for (const cur of m.waiters) {
    if (cur === w) break
    if (cur.ctx !== undefined) return kill(m, ctx)
  }
  return Code.OK
}

/**
 * One iteration of the sleeper's loop in `__mutex_lock_common()`: take the lock if it is free
 * (or was handed over), else fail on a pending signal (interruptible only) or a kill, else sleep.
 * A waiter that leaves the queue is removed here. Returns OK, INTR, DEADLK or SLEEP.
 */
export const waitStep = (w: Waiter): Code => {
  w.kicked = false
  if (w.granted) return Code.OK
  const m = w.mutex
  if (m.owner === 0) {
    const wasFirst = m.waiters[0] === w
    removeWaiter(w)
    acquireAt(m, w.ctx, w.task)
    if (w.ctx !== undefined && !w.ctx.cls.isWaitDie && !wasFirst) checkWaiters(m, w.ctx)
    return Code.OK
  }
  if (w.interruptible && pending(w.task)) {
    removeWaiter(w)
    return Code.INTR
  }
  if (w.ctx !== undefined && checkKill(w, w.ctx) === Code.DEADLK) {
    removeWaiter(w)
    return Code.DEADLK
  }
  // Anti-starvation (MUTEX_FLAG_HANDOFF): the first waiter was woken but the lock got stolen.
  if (w.unlockWoken && m.waiters[0] === w) m.handoff = true
  return Code.SLEEP
}

/**
 * Abandons a wait (fiber interruption): dequeue, give back a lock handed over meanwhile, and pass
 * a wake-up on when the lock is free so no sleeper is stranded.
 */
export const cancelWaiter = (w: Waiter): void => {
  w.wake = undefined
  const m = w.mutex
  if (w.granted) {
    w.granted = false
    if (m.owner === w.task && m.ctx === w.ctx) release(m)
    return
  }
  removeWaiter(w)
  if (m.owner === 0) {
    const first = m.waiters[0]
    if (first !== undefined) wakeWaiter(first)
  }
}
