/**
 * The decision tables of the reference (§2.1–2.4) one row at a time: who waits, who dies, who is
 * wounded (and woken), lazy and sticky wounds, lock stealing. Common rules: WwMutex.rules.test.ts.
 */
import { Deadlock } from "@drmkit/core"
import { WwMutex } from "@drmkit/resv-locking"
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Result } from "effect"
import { settle, txn } from "./helpers.ts"

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
  it.effect("an older ctx waiter already queued: a younger requester holding locks dies at once", () =>
    Effect.gen(function* () {
      const cls = WwMutex.WwClass.waitDie("wd-queued")
      const [a, b, c] = [WwMutex.make(cls, "a"), WwMutex.make(cls, "b"), WwMutex.make(cls, "c")]
      const gate = yield* Deferred.make<void>()
      const holder = yield* Effect.forkChild(
        WwMutex.lockNoCtx(a).pipe(Effect.andThen(Deferred.await(gate)), Effect.andThen(WwMutex.unlock(a)))
      )
      yield* settle
      const old = yield* txn(cls, [c], (ctx) => Effect.andThen(WwMutex.lock(a, ctx), WwMutex.unlockAll(ctx)))
      yield* settle
      assert.strictEqual(a.waiterCount, 1, "the older waits behind the ctx-less holder")
      const young = yield* txn(cls, [b], (ctx) => Effect.flip(WwMutex.lock(a, ctx)))
      assert.instanceOf(yield* Fiber.join(young.fiber), Deadlock)
      assert.strictEqual(a.waiterCount, 1, "the younger died instead of waiting behind an older waiter")
      yield* Deferred.succeed(gate, undefined)
      yield* Fiber.join(holder)
      yield* Fiber.join(old.fiber)
      assert.isFalse(a.isLocked || b.isLocked || c.isLocked)
    })
  )
  it.effect("an older requester holding locks waits for a younger holder (only the younger dies)", () =>
    Effect.gen(function* () {
      const cls = WwMutex.WwClass.waitDie("wd-old-waits")
      const [a, b] = [WwMutex.make(cls, "a"), WwMutex.make(cls, "b")]
      const [go, release] = [yield* Deferred.make<void>(), yield* Deferred.make<void>()]
      const old = yield* txn(cls, [b], (ctx) =>
        Effect.gen(function* () {
          yield* Deferred.await(go)
          yield* WwMutex.lock(a, ctx)
          yield* WwMutex.unlockAll(ctx)
          return "locked"
        })
      )
      const young = yield* txn(cls, [a], () => Deferred.await(release))
      assert.isBelow(old.ctx.stamp, young.ctx.stamp)
      yield* Deferred.succeed(go, undefined)
      yield* settle
      assert.strictEqual(a.waiterCount, 1, "the older holds b and sleeps on a")
      assert.isUndefined(old.fiber.pollUnsafe())
      yield* Deferred.succeed(release, undefined)
      yield* Fiber.join(young.fiber)
      assert.strictEqual(yield* Fiber.join(old.fiber), "locked")
    })
  )
})

/** An older ctx holding `a` that, once `go` opens, locks `b` (wounding a younger holder) and unlocks. */
const olderWounds = (cls: WwMutex.WwClass, a: WwMutex.WwMutex, b: WwMutex.WwMutex, go: Deferred.Deferred<void>) =>
  txn(cls, [a], (ctx) =>
    Effect.andThen(Deferred.await(go), Effect.andThen(WwMutex.lock(b, ctx), WwMutex.unlockAll(ctx)))
  )

describe("wound-wait", () => {
  it.effect("an older requester wounds the younger holder; the holder dies at its next contended lock", () =>
    Effect.gen(function* () {
      const cls = WwMutex.WwClass.woundWait("ww")
      const [a, b, x] = [WwMutex.make(cls, "a"), WwMutex.make(cls, "b"), WwMutex.make(cls, "x")]
      const gate = yield* Deferred.make<void>()
      const blocker = yield* Effect.forkChild(Effect.andThen(WwMutex.lockNoCtx(x), Deferred.await(gate)))
      yield* settle
      const go = yield* Deferred.make<void>()
      const old = yield* olderWounds(cls, a, b, go)
      // the younger holds b and sleeps on x (held ctx-less): the wound must wake it
      const young = yield* txn(cls, [b], (ctx) => Effect.flip(WwMutex.lock(x, ctx)))
      assert.isBelow(old.ctx.stamp, young.ctx.stamp)
      yield* settle
      assert.isFalse(young.ctx.isWounded)
      yield* Deferred.succeed(go, undefined)
      const e = yield* Fiber.join(young.fiber)
      assert.instanceOf(e, Deadlock, "the wounded sleeper is woken and dies")
      yield* Fiber.join(old.fiber)
      yield* Deferred.succeed(gate, undefined)
      yield* Fiber.join(blocker)
    })
  )
  it.effect("lazy wound: a wounded holder that never contends again finishes", () =>
    Effect.gen(function* () {
      const cls = WwMutex.WwClass.woundWait("lazy")
      const [a, b, c] = [WwMutex.make(cls, "a"), WwMutex.make(cls, "b"), WwMutex.make(cls, "c")]
      const go = yield* Deferred.make<void>()
      const old = yield* olderWounds(cls, a, b, go)
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
      yield* Fiber.join(old.fiber)
    })
  )
  it.effect.each(["lock", "failed trylock"] as const)(
    "the wound is sticky until the next %s with nothing held",
    (clear) =>
      Effect.gen(function* () {
        const cls = WwMutex.WwClass.woundWait("sticky")
        const [a, b, c] = [WwMutex.make(cls, "a"), WwMutex.make(cls, "b"), WwMutex.make(cls, "c")]
        const go = yield* Deferred.make<void>()
        const old = yield* olderWounds(cls, a, b, go)
        const young = yield* WwMutex.acquireInit(cls)
        yield* WwMutex.lock(b, young)
        yield* Deferred.succeed(go, undefined)
        yield* settle
        assert.isTrue(young.isWounded, "the older waiter wounded the holder")
        yield* WwMutex.unlockAll(young)
        assert.isTrue(young.isWounded, "still wounded after backing off")
        if (clear === "failed trylock") {
          assert.isUndefined(yield* WwMutex.trylock(a, young), "a is still the older's")
        } else {
          yield* Fiber.join(old.fiber)
          yield* WwMutex.lock(c, young)
        }
        assert.isFalse(young.isWounded, `cleared by a ${clear} with nothing held`)
        yield* WwMutex.unlockAll(young)
        yield* WwMutex.acquireFini(young)
        if (clear === "failed trylock") yield* Fiber.join(old.fiber)
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
