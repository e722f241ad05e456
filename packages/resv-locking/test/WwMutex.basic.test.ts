import { Already, Deadlock } from "@drmkit/core"
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
