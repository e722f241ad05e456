/**
 * ww_mutex basics (lock / Already / trylock / unlock, a first ABBA), bad input (destroyed mutex,
 * wrong class, destroy while locked) and the type-level proof that releasing needs a `Held` witness.
 */
import { Already, Busy, Deadlock, Invalid } from "@drmkit/core"
import { Held, Task, WwMutex } from "@drmkit/resv-locking"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Fiber } from "effect"

describe("WwMutex basics", () => {
  it.effect("lock / Already / unlock / trylock", () =>
    Effect.gen(function* () {
      const cls = WwMutex.WwClass.waitDie("basic")
      const a = WwMutex.make(cls, "a")
      const ctx = yield* WwMutex.acquireCtx(cls)
      const h = yield* WwMutex.lock(a, ctx)
      assert.isTrue(Held.isHeld(h))
      assert.strictEqual(a.ownerTask, yield* Task.current)
      assert.strictEqual(ctx.acquired, 1)
      const again = yield* Effect.flip(WwMutex.lock(a, ctx))
      assert.instanceOf(again, Already)
      assert.strictEqual(ctx.acquired, 1)
      assert.isUndefined(yield* WwMutex.trylock(a, ctx))
      yield* WwMutex.unlock(a)
      assert.isFalse(a.isLocked)
      assert.isFalse(Held.isHeld(h))
      assert.strictEqual(ctx.acquired, 0)
    })
  )

  it.effect("trylock with a ctx counts in acquired and records the ctx (a later lock is Already)", () =>
    Effect.gen(function* () {
      const cls = WwMutex.WwClass.woundWait("try")
      const [a, b] = [WwMutex.make(cls, "a"), WwMutex.make(cls, "b")]
      const ctx = yield* WwMutex.acquireCtx(cls)
      assert.isDefined(yield* WwMutex.trylock(a, ctx))
      assert.strictEqual(ctx.acquired, 1)
      assert.strictEqual(a.lockingCtx, ctx)
      assert.instanceOf(yield* Effect.flip(WwMutex.lock(a, ctx)), Already)
      assert.isDefined(yield* WwMutex.trylock(b))
      assert.isUndefined(b.lockingCtx, "a ctx-less trylock records no ctx")
      assert.strictEqual(ctx.acquired, 1)
      yield* WwMutex.unlock(b)
      yield* WwMutex.unlockAll(ctx)
    })
  )

  it.effect("ABBA wait-die: younger dies", () =>
    Effect.gen(function* () {
      const cls = WwMutex.WwClass.waitDie("abba")
      const a = WwMutex.make(cls, "a")
      const b = WwMutex.make(cls, "b")
      const old = yield* WwMutex.acquireInit(cls)
      yield* WwMutex.lock(a, old)
      const young = Effect.gen(function* () {
        const ctx = yield* WwMutex.acquireInit(cls)
        yield* WwMutex.lock(b, ctx)
        const r = yield* Effect.exit(WwMutex.lock(a, ctx))
        yield* WwMutex.unlockAll(ctx)
        yield* WwMutex.acquireFini(ctx)
        return r
      })
      const f = yield* Effect.forkChild(young)
      yield* Effect.yieldNow
      yield* Effect.yieldNow
      const hb = yield* WwMutex.lock(b, old)
      const r = yield* Fiber.join(f)
      assert.isTrue(Exit.isFailure(r))
      if (Exit.isFailure(r))
        assert.instanceOf(
          r.cause.reasons[0] && "error" in r.cause.reasons[0] ? r.cause.reasons[0].error : undefined,
          Deadlock
        )
      yield* WwMutex.release(hb)
      yield* WwMutex.unlock(a)
      yield* WwMutex.acquireFini(old)
    })
  )
})

describe("bad input", () => {
  it.effect("locking a destroyed mutex is Invalid and changes nothing", () =>
    Effect.gen(function* () {
      const cls = WwMutex.WwClass.waitDie("bad")
      const m = WwMutex.make(cls, "m")
      yield* WwMutex.destroy(m)
      const ctx = yield* WwMutex.acquireCtx(cls)
      for (const attempt of [
        WwMutex.lock(m, ctx),
        WwMutex.lockSlow(m, ctx),
        WwMutex.lockNoCtx(m),
        WwMutex.trylock(m, ctx)
      ]) {
        const e = yield* Effect.flip(attempt)
        assert.instanceOf(e, Invalid)
      }
      assert.isFalse(m.isLocked)
      assert.strictEqual(ctx.acquired, 0)
      assert.instanceOf(yield* Effect.flip(WwMutex.destroy(m)), Invalid)
    })
  )
  it.effect("destroying a locked mutex is Busy and changes nothing", () =>
    Effect.gen(function* () {
      const m = WwMutex.make(WwMutex.reservationWwClass, "resv")
      yield* WwMutex.lockNoCtx(m)
      assert.instanceOf(yield* Effect.flip(WwMutex.destroy(m)), Busy)
      assert.isFalse(m.isDestroyed)
      yield* WwMutex.unlock(m)
      yield* WwMutex.destroy(m)
      assert.isTrue(m.isDestroyed)
    })
  )
  it.effect("wrong class is Invalid for every lock flavour", () =>
    Effect.gen(function* () {
      const m = WwMutex.make(WwMutex.WwClass.waitDie("a"), "m")
      const ctx = yield* WwMutex.acquireCtx(WwMutex.WwClass.woundWait("b"))
      for (const attempt of [
        WwMutex.lock(m, ctx),
        WwMutex.lockInterruptible(m, ctx),
        WwMutex.lockSlowInterruptible(m, ctx),
        WwMutex.trylock(m, ctx)
      ]) {
        assert.instanceOf(yield* Effect.flip(attempt), Invalid)
      }
      assert.isFalse(m.isLocked)
    })
  )
  it("reservation_ww_class is wait-die", () => {
    assert.strictEqual(WwMutex.reservationWwClass.algorithm, "wait-die")
    assert.strictEqual(WwMutex.reservationWwClass.name, "reservation_ww_class")
  })
})

describe("type-level: operations that need the lock take a Held<T>", () => {
  it.effect("release needs a witness, not a mutex", () =>
    Effect.gen(function* () {
      const m = WwMutex.make(WwMutex.WwClass.waitDie("types"), "m")
      const h = yield* WwMutex.lockNoCtx(m)
      // @ts-expect-error a bare mutex is no proof that it is held
      const bad = () => WwMutex.release(m)
      // @ts-expect-error nor is a structurally similar object
      const forged = () => Held.assertHeld({ target: m })
      assert.isFunction(bad)
      assert.isFunction(forged)
      yield* WwMutex.release(h)
    })
  )
})
