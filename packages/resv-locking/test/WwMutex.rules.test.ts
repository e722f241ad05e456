/**
 * Rules common to both algorithms: `Deadlock` only while the ctx holds locks and the ticket kept
 * across a backoff, ctx-less lockers FIFO, signals vs interruptible locks, fiber interruption
 * releasing the scope, the witness held by the locking task only.
 */
import { Deadlock, Interrupted } from "@drmkit/core"
import { Held, Task, WwMutex } from "@drmkit/resv-locking"
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber } from "effect"
import { settle, txn } from "./helpers.ts"

describe("common rules", () => {
  it.effect("Deadlock only while the ctx holds locks; the stamp is kept across the backoff", () =>
    Effect.gen(function* () {
      const cls = WwMutex.WwClass.waitDie("keep")
      const [a, b] = [WwMutex.make(cls, "a"), WwMutex.make(cls, "b")]
      const gate = yield* Deferred.make<void>()
      const old = yield* txn(cls, [a], () => Deferred.await(gate))
      const young = yield* txn(cls, [b], (ctx) =>
        Effect.gen(function* () {
          const stamp = ctx.stamp
          const e = yield* Effect.flip(WwMutex.lock(a, ctx))
          assert.instanceOf(e, Deadlock)
          yield* WwMutex.unlockAll(ctx)
          yield* WwMutex.lockSlow(a, ctx) // nothing held: waits instead of dying
          yield* WwMutex.lock(b, ctx)
          assert.strictEqual(ctx.stamp, stamp)
          yield* WwMutex.unlockAll(ctx)
          return ctx.acquired
        })
      )
      yield* settle
      yield* Deferred.succeed(gate, undefined)
      yield* Fiber.join(old.fiber)
      assert.strictEqual(yield* Fiber.join(young.fiber), 0)
    })
  )
  it.effect("ctx-less lockers queue FIFO and never fail", () =>
    Effect.gen(function* () {
      const cls = WwMutex.WwClass.waitDie("fifo")
      const m = WwMutex.make(cls, "m")
      yield* WwMutex.lockNoCtx(m)
      const order: Array<number> = []
      const fibers = yield* Effect.forEach(
        [1, 2, 3, 4],
        (i) =>
          Effect.forkChild(
            Effect.gen(function* () {
              yield* WwMutex.lockNoCtx(m)
              order.push(i)
              yield* WwMutex.unlock(m)
            })
          ),
        { concurrency: 1 }
      )
      yield* settle
      assert.strictEqual(m.waiterCount, 4)
      yield* WwMutex.unlock(m)
      yield* Fiber.joinAll(fibers)
      assert.deepStrictEqual(order, [1, 2, 3, 4])
    })
  )
  it.effect("interruptible lock fails with Interrupted on a signal; the plain one keeps waiting", () =>
    Effect.gen(function* () {
      const cls = WwMutex.WwClass.waitDie("sig")
      const m = WwMutex.make(cls, "m")
      yield* WwMutex.lockNoCtx(m)
      const intr = yield* Effect.forkChild(Effect.flip(WwMutex.lockNoCtxInterruptible(m)))
      const plain = yield* Effect.forkChild(WwMutex.lockNoCtx(m).pipe(Effect.andThen(WwMutex.unlock(m))))
      yield* settle
      yield* Task.signal(intr.id)
      yield* Task.signal(plain.id)
      const e = yield* Fiber.join(intr)
      assert.instanceOf(e, Interrupted)
      yield* settle
      assert.strictEqual(m.waiterCount, 1, "the uninterruptible waiter ignores signals")
      yield* WwMutex.unlock(m)
      yield* Fiber.join(plain)
      Task.clearSignal(plain.id)
      assert.isFalse(Task.hasPendingSignal(plain.id))
    })
  )
  it.effect("fiber interruption removes the waiter and the scope releases what the ctx holds", () =>
    Effect.gen(function* () {
      const cls = WwMutex.WwClass.woundWait("kill")
      const [a, b] = [WwMutex.make(cls, "a"), WwMutex.make(cls, "b")]
      yield* WwMutex.lockNoCtx(b)
      const holding = yield* Deferred.make<void>()
      const f = yield* Effect.forkChild(
        Effect.scoped(
          Effect.gen(function* () {
            const ctx = yield* WwMutex.acquireCtx(cls)
            yield* WwMutex.lock(a, ctx)
            yield* Deferred.succeed(holding, undefined)
            yield* WwMutex.lock(b, ctx)
          })
        )
      )
      yield* Deferred.await(holding)
      yield* settle
      assert.strictEqual(b.waiterCount, 1)
      yield* Fiber.interrupt(f)
      assert.strictEqual(b.waiterCount, 0)
      assert.isFalse(a.isLocked, "the scope released a")
      yield* WwMutex.unlock(b)
    })
  )
  it.effect("witness: held by the locking task only, stale after unlock", () =>
    Effect.gen(function* () {
      const cls = WwMutex.WwClass.waitDie("held")
      const m = WwMutex.make(cls, "m")
      const h = yield* WwMutex.lockNoCtx(m)
      assert.isTrue(Held.isHeld(h))
      assert.strictEqual(yield* Held.assertHeld(h), m)
      const other = yield* Fiber.join(yield* Effect.forkChild(Effect.sync(() => Held.isHeld(h))))
      assert.isFalse(other, "another task does not hold it")
      yield* WwMutex.release(h)
      assert.isFalse(Held.isHeld(h))
      const exit = yield* Effect.exit(Held.assertHeld(h))
      assert.isTrue(Exit.isFailure(exit))
    })
  )
})
