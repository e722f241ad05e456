/**
 * Effect shell helpers of the ww core (internal): turning codes into typed errors or defects, the
 * cached success effect per mutex, and the sleeping slow path (one waiter per blocked lock, woken
 * by unlock / die / wound / signal, removed on fiber interruption).
 *
 * @since 0.1.0
 */
import { Already, CurrentTraceSink, Deadlock, Interrupted, Invalid, type TraceSink, traceNow } from "@drmkit/core"
import { Effect, Exit, Fiber } from "effect"
import type { Held } from "../Held.ts"
import { makeHeld } from "./held.ts"
import { config, LockdepViolation, takeAbort } from "./lockdep.ts"
import { addWaiter, cancelWaiter, waitStep, wakeWaiter } from "./queue.ts"
import { onSignal } from "./signals.ts"
import { type AcquireCtx, Code, Waiter, type WwMutex } from "./state.ts"
import { complete, instant } from "./trace.ts"
import { injectAfterLock } from "./ww.ts"

/** The cached witness of `m`. */
export const heldOf = (m: WwMutex): Held<WwMutex> => (m.heldValue ??= makeHeld(m, m))

/** The cached `Effect.succeed(witness)` of `m`. */
export const heldEffectOf = (m: WwMutex): Effect.Effect<Held<WwMutex>> => (m.heldEffect ??= Effect.succeed(heldOf(m)))

/** The defect for the violation that made the last operation abort. */
export const dieViolation = (): Effect.Effect<never> => {
  const v = takeAbort()
  return Effect.die(v === undefined ? new Error("lockdep: violation without report") : new LockdepViolation(v))
}

/**
 * Builds a control-flow error (`Deadlock`, `Already`, `Interrupted`) without capturing a stack
 * trace: backoffs are routine in a contended workload, and the V8 stack capture dominated their
 * cost. The error still names the lock.
 */
const controlError = <E>(make: () => E): E => {
  const limit = Error.stackTraceLimit
  Error.stackTraceLimit = 0
  try {
    return make()
  } finally {
    Error.stackTraceLimit = limit
  }
}

/** `Deadlock` for `m`, cheaply. */
export const deadlockOf = (m: WwMutex): Deadlock => controlError(() => new Deadlock({ lock: m.name }))

/**
 * The running fiber's trace sink, when it records and contention tracing is on (slow paths only:
 * never on the fast path).
 */
const sinkOf = (): TraceSink | undefined => {
  if (!config.traceContention) return undefined
  const sink = Fiber.getCurrent()?.getRef(CurrentTraceSink)
  return sink?.enabled ? sink : undefined
}

const ctxArgs = (m: WwMutex, ctx: AcquireCtx | undefined) =>
  ctx === undefined
    ? { lock: m.name, cls: m.cls.name }
    : { lock: m.name, cls: m.cls.name, stamp: ctx.stamp, acquired: ctx.held.length, wounded: ctx.wounded }

/** Fails with `Deadlock` on `m`, tracing the backoff (`ww_mutex` / `-EDEADLK`). */
const backoff = (m: WwMutex, ctx: AcquireCtx | undefined, injected: boolean): Effect.Effect<never, Deadlock> => {
  const sink = sinkOf()
  if (sink !== undefined) {
    instant(sink, "ww_mutex", "-EDEADLK", Fiber.getCurrent()?.id ?? 0, { ...ctxArgs(m, ctx), injected })
  }
  return Effect.fail(deadlockOf(m))
}

/** The typed failure (or defect) for a non-OK code. */
export const failCode = (
  code: Code,
  m: WwMutex,
  ctx: AcquireCtx | undefined
): Effect.Effect<never, Deadlock | Already | Interrupted | Invalid> => {
  switch (code) {
    case Code.DEADLK:
      return backoff(m, ctx, false)
    case Code.ALREADY:
      return Effect.fail(controlError(() => new Already({ lock: m.name })))
    case Code.INTR:
      return Effect.fail(controlError(() => new Interrupted({ what: `ww_mutex ${m.name}` })))
    case Code.DESTROYED:
      return Effect.fail(new Invalid({ what: m.name, reason: "ww_mutex was destroyed" }))
    case Code.WRONG_CLASS:
      return Effect.fail(
        new Invalid({
          what: m.name,
          reason: `mutex of class ${m.cls.name} locked with an acquire ctx of class ${ctx?.cls.name ?? "?"}`
        })
      )
    case Code.VIOLATION:
      return dieViolation()
    default:
      return Effect.die(new Error(`ww core: unexpected code ${code}`))
  }
}

/** After any successful ww lock: deadlock injection, then the witness. */
export const afterAcquire = (m: WwMutex, ctx: AcquireCtx | undefined): Effect.Effect<Held<WwMutex>, Deadlock> =>
  ctx?.inject && injectAfterLock(m, ctx) ? backoff(m, ctx, true) : heldEffectOf(m)

const sleep = (w: Waiter): Effect.Effect<void> =>
  Effect.callback<void>((resume) => {
    if (w.kicked) return resume(Effect.void)
    const fiber = Fiber.getCurrent()
    const run = () => resume(Effect.void)
    // Resuming runs the fiber synchronously; a wake-up must only make it runnable.
    w.wake = fiber === undefined ? () => queueMicrotask(run) : () => fiber.currentDispatcher.scheduleTask(run, 0)
  })

/**
 * The slow path: queue a waiter on `m` and sleep until the lock is ours (OK), we must back off
 * (Deadlock), or a signal arrives (Interrupted, interruptible only). Interruption of the fiber
 * dequeues the waiter and returns a lock handed over meanwhile; the wait itself is the only
 * interruptible part, so a granted lock is never lost.
 */
export const sleepOn = (
  m: WwMutex,
  ctx: AcquireCtx | undefined,
  task: number,
  interruptible: boolean
): Effect.Effect<Held<WwMutex>, Deadlock | Interrupted> =>
  Effect.uninterruptibleMask((restore) => {
    const w = new Waiter(m, ctx, task, interruptible)
    if (addWaiter(w) === Code.DEADLK) return backoff(m, ctx, false)
    if (ctx !== undefined) ctx.sleeping = w
    const sink = sinkOf()
    const start = sink === undefined ? 0 : traceNow(sink)
    const unregister = interruptible ? onSignal(task, () => wakeWaiter(w)) : undefined
    const loop: Effect.Effect<Code> = Effect.suspend(() => {
      const code = waitStep(w)
      return code === Code.SLEEP ? Effect.flatMap(restore(sleep(w)), () => loop) : Effect.succeed(code)
    })
    return loop.pipe(
      Effect.onExit((exit) =>
        Effect.sync(() => {
          if (ctx !== undefined && ctx.sleeping === w) ctx.sleeping = undefined
          unregister?.()
          if (!Exit.isSuccess(exit)) cancelWaiter(w)
          if (sink !== undefined) {
            const outcome = Exit.isSuccess(exit)
              ? ["acquired", "-EDEADLK", "", "", "", "", "-EINTR"][exit.value]
              : "killed"
            complete(sink, "ww_mutex", `ww_mutex_lock ${m.name} (contended)`, task, start, {
              ...ctxArgs(m, ctx),
              outcome
            })
          }
        })
      ),
      Effect.flatMap((code) => (code === Code.OK ? afterAcquire(m, ctx) : failCode(code, m, ctx)))
    ) as Effect.Effect<Held<WwMutex>, Deadlock | Interrupted>
  })
