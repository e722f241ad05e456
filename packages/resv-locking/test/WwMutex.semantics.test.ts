/**
 * The decision tables of the reference (§2.1–2.4) one row at a time: who waits, who dies, who is
 * wounded and woken; ctx-less FIFO; Already and trylock; signals and fiber interruption; the
 * ticket kept across a backoff; bad input.
 */
import { Deadlock, Interrupted } from "@drmkit/core"
import { Held, Task, WwMutex } from "@drmkit/resv-locking"
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Result } from "effect"

type M = WwMutex.WwMutex
const settle = Effect.repeat(Effect.yieldNow, { times: 20 })

/** Forks a fiber that inits a ctx (stamp order = fork order), locks `pre`, signals, then runs `then`. */
const txn = <A, E>(
  cls: WwMutex.WwClass,
  pre: ReadonlyArray<M>,
  then: (ctx: WwMutex.AcquireCtx) => Effect.Effect<A, E>
) =>
  Effect.gen(function* () {
    const ready = yield* Deferred.make<WwMutex.AcquireCtx>()
    const fiber = yield* Effect.forkChild(
      Effect.scoped(
        Effect.gen(function* () {
          const ctx = yield* WwMutex.acquireCtx(cls, { injection: false })
          for (const m of pre) yield* WwMutex.lock(m, ctx)
          yield* Deferred.succeed(ready, ctx)
          return yield* then(ctx)
        })
      )
    )
    const ctx = yield* Deferred.await(ready)
    return { fiber, ctx }
  })

describe("wait-die", () => {
  it.effect("younger requester holding locks dies when the holder is older", () =>
    Effect.gen(function* () {
      const cls = WwMutex.WwClass.waitDie("wd")
      const [a, b] = [WwMutex.make(cls, "a"), WwMutex.make(cls, "b")]
      const gate = yield* Deferred.make<void>()
      const old = yield* txn(cls, [a], () => Deferred.await(gate))
      const young = yield* txn(cls, [b], (ctx) => Effect.flip(WwMutex.lock(a, ctx)))
      assert.isBelow(old.ctx.stamp, young.ctx.stamp)
      const e = yield* Fiber.join(young.fiber)
      assert.instanceOf(e, Deadlock)
      assert.strictEqual((e as Deadlock).lock, "a")
      yield* Deferred.succeed(gate, undefined)
      yield* Fiber.join(old.fiber)
    })
  )
  it.effect("a requester holding nothing waits and never dies", () =>
    Effect.gen(function* () {
      const cls = WwMutex.WwClass.waitDie("wd0")
      const a = WwMutex.make(cls, "a")
      const gate = yield* Deferred.make<void>()
      const old = yield* txn(cls, [a], () => Deferred.await(gate))
      const young = yield* txn(cls, [], (ctx) => WwMutex.lock(a, ctx).pipe(Effect.andThen(WwMutex.unlock(a))))
      yield* settle
      assert.strictEqual(a.waiterCount, 1)
      yield* Deferred.succeed(gate, undefined)
      yield* Fiber.join(old.fiber)
      yield* Fiber.join(young.fiber)
    })
  )
  it.effect("an older waiter queued behind wakes the younger waiter holding locks so it dies", () =>
    Effect.gen(function* () {
      const cls = WwMutex.WwClass.waitDie("wd-wake")
      const [a, b, c] = [WwMutex.make(cls, "a"), WwMutex.make(cls, "b"), WwMutex.make(cls, "c")]
      const gate = yield* Deferred.make<void>()
      const release = yield* Deferred.make<void>()
      // holder of a is a ctx-less task, so the younger may wait (H has no ctx, no older waiter)
      const holder = yield* Effect.forkChild(
        WwMutex.lockNoCtx(a).pipe(Effect.andThen(Deferred.await(release)), Effect.andThen(WwMutex.unlock(a)))
      )
      yield* settle
      const older = yield* Deferred.make<WwMutex.AcquireCtx>()
      const oldF = yield* Effect.forkChild(
        Effect.scoped(
          Effect.gen(function* () {
            const ctx = yield* WwMutex.acquireCtx(cls)
            yield* Deferred.succeed(older, ctx)
            yield* WwMutex.lock(c, ctx)
            yield* Deferred.await(gate)
            return yield* Effect.result(WwMutex.lock(a, ctx))
          })
        )
      )
      yield* Deferred.await(older)
      const young = yield* txn(cls, [b], (ctx) => Effect.flip(WwMutex.lock(a, ctx)))
      yield* settle
      assert.strictEqual(a.waiterCount, 1, "the younger waits behind a ctx-less holder")
      yield* Deferred.succeed(gate, undefined) // the older now queues ahead and wakes the younger
      const e = yield* Fiber.join(young.fiber)
      assert.instanceOf(e, Deadlock)
      assert.isTrue(a.isLocked, "the younger died while a was still held")
      yield* Deferred.succeed(release, undefined)
      yield* Fiber.join(holder)
      const r = yield* Fiber.join(oldF)
      assert.isTrue(Result.isSuccess(r))
    })
  )
})

describe("wound-wait", () => {
  it.effect("an older requester wounds the younger holder; the holder dies at its next contended lock", () =>
    Effect.gen(function* () {
      const cls = WwMutex.WwClass.woundWait("ww")
      const [a, b, x] = [WwMutex.make(cls, "a"), WwMutex.make(cls, "b"), WwMutex.make(cls, "x")]
      const gate = yield* Deferred.make<void>()
      const blocker = yield* Effect.forkChild(Effect.andThen(WwMutex.lockNoCtx(x), Deferred.await(gate)))
      yield* settle
      const oldReady = yield* Deferred.make<WwMutex.AcquireCtx>()
      const go = yield* Deferred.make<void>()
      const old = yield* Effect.forkChild(
        Effect.scoped(
          Effect.gen(function* () {
            const ctx = yield* WwMutex.acquireCtx(cls)
            yield* WwMutex.lock(a, ctx)
            yield* Deferred.succeed(oldReady, ctx)
            yield* Deferred.await(go)
            yield* WwMutex.lock(b, ctx) // b held by the younger: wound it, wait
            yield* WwMutex.unlockAll(ctx)
          })
        )
      )
      const oldCtx = yield* Deferred.await(oldReady)
      // the younger holds b and sleeps on x (held ctx-less): the wound must wake it
      const young = yield* txn(cls, [b], (ctx) => Effect.flip(WwMutex.lock(x, ctx)))
      assert.isBelow(oldCtx.stamp, young.ctx.stamp)
      yield* settle
      assert.isFalse(young.ctx.isWounded)
      yield* Deferred.succeed(go, undefined)
      const e = yield* Fiber.join(young.fiber)
      assert.instanceOf(e, Deadlock, "the wounded sleeper is woken and dies")
      yield* Fiber.join(old)
      yield* Deferred.succeed(gate, undefined)
      yield* Fiber.join(blocker)
    })
  )
  it.effect("lazy wound: a wounded holder that never contends again finishes", () =>
    Effect.gen(function* () {
      const cls = WwMutex.WwClass.woundWait("lazy")
      const [a, b, c] = [WwMutex.make(cls, "a"), WwMutex.make(cls, "b"), WwMutex.make(cls, "c")]
      const oldReady = yield* Deferred.make<WwMutex.AcquireCtx>()
      const go = yield* Deferred.make<void>()
      const old = yield* Effect.forkChild(
        Effect.scoped(
          Effect.gen(function* () {
            const ctx = yield* WwMutex.acquireCtx(cls)
            yield* WwMutex.lock(a, ctx)
            yield* Deferred.succeed(oldReady, ctx)
            yield* Deferred.await(go)
            yield* WwMutex.lock(b, ctx)
            yield* WwMutex.unlockAll(ctx)
          })
        )
      )
      yield* Deferred.await(oldReady)
      const proceed = yield* Deferred.make<void>()
      const young = yield* txn(cls, [b], (ctx) =>
        Effect.gen(function* () {
          yield* Deferred.await(proceed)
          assert.isTrue(ctx.isWounded)
          yield* WwMutex.lock(c, ctx) // uncontended: no death
          yield* WwMutex.unlockAll(ctx)
          return "finished"
        })
      )
      yield* Deferred.succeed(go, undefined)
      yield* settle
      yield* Deferred.succeed(proceed, undefined)
      assert.strictEqual(yield* Fiber.join(young.fiber), "finished")
      yield* Fiber.join(old)
    })
  )
  it.effect("the wound is sticky until the next lock with nothing held", () =>
    Effect.gen(function* () {
      const cls = WwMutex.WwClass.woundWait("sticky")
      const [a, b, c] = [WwMutex.make(cls, "a"), WwMutex.make(cls, "b"), WwMutex.make(cls, "c")]
      const [oldReady, go] = [yield* Deferred.make<void>(), yield* Deferred.make<void>()]
      const old = yield* Effect.forkChild(
        Effect.scoped(
          Effect.gen(function* () {
            const ctx = yield* WwMutex.acquireCtx(cls)
            yield* WwMutex.lock(a, ctx)
            yield* Deferred.succeed(oldReady, undefined)
            yield* Deferred.await(go)
            yield* WwMutex.lock(b, ctx) // held by the younger: wound it and wait
            yield* WwMutex.unlockAll(ctx)
          })
        )
      )
      yield* Deferred.await(oldReady)
      const young = yield* WwMutex.acquireInit(cls)
      yield* WwMutex.lock(b, young)
      yield* Deferred.succeed(go, undefined)
      yield* settle
      assert.isTrue(young.isWounded, "the older waiter wounded the holder")
      yield* WwMutex.unlockAll(young)
      assert.isTrue(young.isWounded, "still wounded after backing off")
      yield* Fiber.join(old)
      yield* WwMutex.lock(c, young)
      assert.isFalse(young.isWounded, "cleared by the next lock with nothing held")
      yield* WwMutex.unlockAll(young)
      yield* WwMutex.acquireFini(young)
    })
  )
  it.effect("a requester holding nothing wounds nobody", () =>
    Effect.gen(function* () {
      const cls = WwMutex.WwClass.woundWait("nowound")
      const a = WwMutex.make(cls, "a")
      const gate = yield* Deferred.make<void>()
      const older = yield* Deferred.make<WwMutex.AcquireCtx>()
      const oldF = yield* Effect.forkChild(
        Effect.scoped(
          Effect.gen(function* () {
            const ctx = yield* WwMutex.acquireCtx(cls)
            yield* Deferred.succeed(older, ctx)
            yield* Deferred.await(gate)
            yield* WwMutex.lock(a, ctx)
            yield* WwMutex.unlock(a)
          })
        )
      )
      yield* Deferred.await(older)
      const young = yield* txn(cls, [a], (ctx) => Effect.as(settle, ctx.isWounded))
      yield* Deferred.succeed(gate, undefined)
      assert.isFalse(yield* Fiber.join(young.fiber))
      yield* Fiber.join(oldF)
    })
  )
  it.effect("lock stealing + recheck: a task stealing past an older waiter holding locks wounds itself", () =>
    Effect.gen(function* () {
      const cls = WwMutex.WwClass.woundWait("steal")
      const [a, b] = [WwMutex.make(cls, "a"), WwMutex.make(cls, "b")]
      const oldReady = yield* Deferred.make<WwMutex.AcquireCtx>()
      yield* WwMutex.lockNoCtx(a)
      const old = yield* Effect.forkChild(
        Effect.scoped(
          Effect.gen(function* () {
            const ctx = yield* WwMutex.acquireCtx(cls)
            yield* WwMutex.lock(b, ctx)
            yield* Deferred.succeed(oldReady, ctx)
            yield* WwMutex.lock(a, ctx)
            yield* WwMutex.unlockAll(ctx)
          })
        )
      )
      yield* Deferred.await(oldReady)
      yield* settle
      assert.strictEqual(a.waiterCount, 1)
      const young = yield* WwMutex.acquireInit(cls)
      const c = WwMutex.make(cls, "c")
      yield* WwMutex.lock(c, young)
      yield* WwMutex.unlock(a) // wakes the older waiter, which has not run yet
      yield* WwMutex.lock(a, young) // steal it
      assert.isTrue(young.isWounded, "stole past an older waiter holding locks")
      yield* WwMutex.unlockAll(young)
      yield* WwMutex.acquireFini(young)
      yield* Fiber.join(old)
    })
  )
})

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
