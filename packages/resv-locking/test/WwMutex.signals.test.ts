/**
 * Interruptible ww locks and task signals: `-EINTR` only while sleeping (a free lock is still
 * taken with a signal pending, as the kernel's trylock precedes its signal check), the ctx is left
 * as it was, and the uninterruptible variants ignore signals.
 */
import { Interrupted } from "@drmkit/core"
import { Task, WwMutex } from "@drmkit/resv-locking"
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Fiber } from "effect"

const settle = Effect.repeat(Effect.yieldNow, { times: 20 })

describe("interruptible ww locks", () => {
  it.effect.each(["lockInterruptible", "lockSlowInterruptible"] as const)(
    "%s with a ctx: a signal while sleeping gives Interrupted; ctx and queue unchanged",
    (variant) =>
      Effect.gen(function* () {
        const cls = WwMutex.WwClass.woundWait("intr")
        const [a, b] = [WwMutex.make(cls, "a"), WwMutex.make(cls, "b")]
        yield* WwMutex.lockNoCtx(b)
        const holding = yield* Deferred.make<WwMutex.AcquireCtx>()
        const f = yield* Effect.forkChild(
          Effect.scoped(
            Effect.gen(function* () {
              const ctx = yield* WwMutex.acquireCtx(cls)
              if (variant === "lockInterruptible") yield* WwMutex.lock(a, ctx)
              yield* Deferred.succeed(holding, ctx)
              const e = yield* Effect.flip(
                variant === "lockInterruptible"
                  ? WwMutex.lockInterruptible(b, ctx)
                  : WwMutex.lockSlowInterruptible(b, ctx)
              )
              return { e, acquired: ctx.acquired }
            })
          )
        )
        const ctx = yield* Deferred.await(holding)
        yield* settle
        assert.strictEqual(b.waiterCount, 1)
        yield* Task.signal(f.id)
        const r = yield* Fiber.join(f)
        assert.instanceOf(r.e, Interrupted)
        assert.strictEqual(r.acquired, variant === "lockInterruptible" ? 1 : 0)
        assert.strictEqual(b.waiterCount, 0)
        assert.isTrue(ctx.isFinished)
        assert.isFalse(a.isLocked)
        yield* WwMutex.unlock(b)
      })
  )

  it.effect("a pending signal does not stop the acquisition of a free lock", () =>
    Effect.gen(function* () {
      const cls = WwMutex.WwClass.waitDie("pending")
      const m = WwMutex.make(cls, "m")
      const me = yield* Task.current
      yield* Task.signal(me)
      assert.isTrue(yield* Task.signalPending)
      const ctx = yield* WwMutex.acquireCtx(cls)
      yield* WwMutex.lockInterruptible(m, ctx)
      yield* WwMutex.unlock(m)
      assert.isTrue(Task.clearSignal(me))
      assert.isFalse(Task.hasPendingSignal(me))
    })
  )

  it.effect("a pending signal fails a contended interruptible lock at once", () =>
    Effect.gen(function* () {
      const cls = WwMutex.WwClass.waitDie("pending2")
      const m = WwMutex.make(cls, "m")
      const gate = yield* Deferred.make<void>()
      const holder = yield* Effect.forkChild(
        WwMutex.lockNoCtx(m).pipe(Effect.andThen(Deferred.await(gate)), Effect.andThen(WwMutex.unlock(m)))
      )
      yield* settle
      const me = yield* Task.current
      Task.signalUnsafe(me)
      const e = yield* Effect.flip(WwMutex.lockNoCtxInterruptible(m))
      assert.instanceOf(e, Interrupted)
      assert.strictEqual(m.waiterCount, 0)
      Task.clearSignal(me)
      yield* Deferred.succeed(gate, undefined)
      yield* Fiber.join(holder)
    })
  )

  it("onSignal wakers run once per signal and can be unregistered", () => {
    const task = 987_654
    let woken = 0
    const off = Task.onSignal(task, () => woken++)
    Task.signalUnsafe(task)
    assert.strictEqual(woken, 1)
    off()
    Task.signalUnsafe(task)
    assert.strictEqual(woken, 1)
    assert.isTrue(Task.hasPendingSignal(task))
    assert.isTrue(Task.clearSignal(task))
    assert.isFalse(Task.clearSignal(task))
  })
})

describe("lockNoCtxScoped (guard)", () => {
  it.effect("unlocks when the scope closes, on success and on interruption, and abandons a wait", () =>
    Effect.gen(function* () {
      const m = WwMutex.make(WwMutex.WwClass.waitDie("guard"), "m")
      yield* Effect.scoped(WwMutex.lockNoCtxScoped(m))
      assert.isFalse(m.isLocked)
      const held = yield* Deferred.make<void>()
      const holder = yield* Effect.forkChild(
        Effect.scoped(
          Effect.andThen(WwMutex.lockNoCtxScoped(m), Effect.andThen(Deferred.succeed(held, undefined), Effect.never))
        )
      )
      yield* Deferred.await(held)
      const sleeper = yield* Effect.forkChild(Effect.scoped(WwMutex.lockNoCtxScoped(m)))
      yield* settle
      assert.strictEqual(m.waiterCount, 1)
      yield* Fiber.interrupt(sleeper)
      assert.strictEqual(m.waiterCount, 0, "the interrupted wait left the queue")
      yield* Fiber.interrupt(holder)
      assert.isFalse(m.isLocked, "the interrupted holder's scope unlocked")
    })
  )
})
