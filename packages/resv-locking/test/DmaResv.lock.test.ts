// dma_resv snapshots (get_singleton, copy_fences), dma_resv_wait_timeout, the lock wrappers and
// the Held<DmaResv> witness checks (run time and compile time).
import { DmaFence, DmaResv, Task, WwMutex } from "@drmkit/resv-locking"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Fiber } from "effect"
import { TestClock } from "effect/testing"
import { entries, locked, setup, withFence } from "./resvHelpers.ts"

describe("snapshots", () => {
  it.effect("get_singleton: none, the fence itself, or a fence array on a fresh context", () =>
    Effect.gen(function* () {
      const { resv, held, ctx } = yield* setup(2)
      assert.isUndefined(yield* DmaResv.getSingleton(resv, "bookkeep"))
      const a = DmaFence.make(ctx)
      yield* DmaResv.addFence(held, a, "write")
      assert.strictEqual(yield* DmaResv.getSingleton(resv, "bookkeep"), a)
      const b = DmaFence.make(DmaFence.contextAlloc("b"))
      yield* DmaResv.addFence(held, b, "read")
      yield* DmaResv.unlock(held)
      assert.strictEqual(yield* DmaResv.getSingleton(resv, "write"), a)
      const s = yield* DmaResv.getSingleton(resv, "read")
      assert.instanceOf(s, DmaFence.FenceArray)
      assert.notStrictEqual(s?.context, ctx)
      a.signal()
      assert.isFalse(s?.isSignaled)
      b.signal()
      assert.isTrue(s?.isSignaled)
    })
  )

  it.effect("copy_fences: dst takes src's unsignalled fences with their usages; dst readers restart", () =>
    Effect.gen(function* () {
      const { resv: src, held, ctx } = yield* setup(3)
      const [k, w, r] = [
        DmaFence.make(ctx),
        DmaFence.make(DmaFence.contextAlloc("w")),
        DmaFence.make(DmaFence.contextAlloc("r"))
      ]
      yield* DmaResv.addFence(held, k, "kernel")
      yield* DmaResv.addFence(held, w, "write")
      yield* DmaResv.addFence(held, r, "read")
      yield* DmaResv.unlock(held)
      w.signal()
      const dst = DmaResv.make("dst")
      const old = DmaFence.make(DmaFence.contextAlloc("old"))
      yield* locked(dst, (h) => Effect.andThen(DmaResv.reserveFences(h, 1), DmaResv.addFence(h, old, "bookkeep")))
      const reader = DmaResv.iterUnlocked(dst, "bookkeep")
      assert.strictEqual(reader.first(), old)
      yield* locked(dst, (h) => DmaResv.copyFences(h, src))
      assert.strictEqual(reader.next(), k)
      assert.isTrue(reader.isRestarted)
      assert.deepStrictEqual(yield* entries(dst), [
        [k, "kernel"],
        [r, "read"]
      ])
    })
  )
})

describe("dma_resv_copy_fences table size", () => {
  it.effect("dst is allocated for src's whole table (signalled entries included), or gets none", () =>
    Effect.gen(function* () {
      const { resv: src, held } = yield* setup(6)
      const fs = Array.from({ length: 6 }, () => DmaFence.make(DmaFence.contextAlloc("c")))
      for (const f of fs) yield* DmaResv.addFence(held, f, "read")
      yield* DmaResv.unlock(held)
      fs[0]?.signal()
      fs[1]?.signal()
      const dst = DmaResv.make("dst")
      yield* locked(dst, (h) => DmaResv.copyFences(h, src))
      assert.strictEqual(dst.fenceCount, 4)
      assert.strictEqual(dst.fenceCount + dst.freeSlots, 9, "allocated for 6: 24 + 48 bytes -> 96-byte bucket")
      for (const f of fs) f.signal()
      yield* locked(dst, (h) => DmaResv.copyFences(h, src))
      assert.strictEqual(dst.fenceCount + dst.freeSlots, 0, "nothing unsignalled: no table")
    })
  )
})

describe("dma_resv_describe", () => {
  it.effect("dumps the entries up to READ (signalled too, not BOOKKEEP) under the lock", () =>
    Effect.gen(function* () {
      const { resv, held, ctx } = yield* setup(3)
      const [k, r] = [DmaFence.make(ctx), DmaFence.make(DmaFence.contextAlloc("r"))]
      yield* DmaResv.addFence(held, k, "kernel")
      yield* DmaResv.addFence(held, r, "read")
      yield* DmaResv.addFence(held, DmaFence.make(DmaFence.contextAlloc("bk")), "bookkeep")
      k.signal()
      assert.strictEqual(DmaResv.describe(held), `kernel fence: ${k} signalled\nread fence: ${r} unsignalled`)
      yield* DmaResv.unlock(held)
      assert.throws(() => DmaResv.describe(held), "not locked")
      assert.strictEqual(resv.fenceCount, 3)
    })
  )
})

describe("dma_resv_wait_timeout", () => {
  it.effect("zero timeout polls: 1 when idle, 0 when busy, never blocking", () =>
    Effect.gen(function* () {
      const { resv, f } = yield* withFence("write")
      assert.strictEqual(yield* DmaResv.waitTimeout(resv, "write", { timeoutMs: 0 }), 0)
      assert.strictEqual(yield* DmaResv.waitTimeout(resv, "kernel", { timeoutMs: 0 }), 1, "KERNEL query ignores WRITE")
      f.signal()
      assert.strictEqual(yield* DmaResv.waitTimeout(resv, "write", { timeoutMs: 0 }), 1)
    })
  )

  it.effect("passes the remaining budget from fence to fence", () =>
    Effect.gen(function* () {
      const resv = DmaResv.make("wait")
      const [a, b] = [DmaFence.make(DmaFence.contextAlloc("a")), DmaFence.make(DmaFence.contextAlloc("b"))]
      yield* locked(resv, (h) =>
        Effect.gen(function* () {
          yield* DmaResv.reserveFences(h, 2)
          yield* DmaResv.addFence(h, a, "write")
          yield* DmaResv.addFence(h, b, "read")
        })
      )
      const w = yield* Effect.forkChild(DmaResv.waitTimeout(resv, "read", { timeoutMs: 100 }))
      yield* TestClock.adjust(30)
      a.signal()
      yield* TestClock.adjust(30)
      b.signal()
      assert.strictEqual(yield* Fiber.join(w), 40)
      const c = DmaFence.make(DmaFence.contextAlloc("c"))
      yield* locked(resv, (h) => Effect.andThen(DmaResv.reserveFences(h, 1), DmaResv.addFence(h, c, "kernel")))
      const t = yield* Effect.forkChild(DmaResv.waitTimeout(resv, "bookkeep", { timeoutMs: 10 }))
      yield* TestClock.adjust(10)
      assert.strictEqual(yield* Fiber.join(t), 0, "timed out")
      const forever = yield* Effect.forkChild(DmaResv.waitTimeout(resv, "kernel"))
      yield* Effect.yieldNow
      c.signal()
      assert.strictEqual(yield* Fiber.join(forever), Number.POSITIVE_INFINITY)
    })
  )

  it.effect("interruptible waits fail with RestartSys on a task signal; bad usage is Invalid", () =>
    Effect.gen(function* () {
      const { resv } = yield* withFence("kernel")
      const w = yield* Effect.forkChild(DmaResv.waitTimeout(resv, "read", { interruptible: true }))
      yield* Effect.yieldNow
      yield* Task.signal(w.id)
      const e = yield* Effect.flip(Fiber.join(w))
      assert.strictEqual(e._tag, "RestartSys")
      Task.clearSignal(w.id)
      const bad = yield* Effect.flip(DmaResv.waitTimeout(resv, "nope" as DmaResv.Usage, { timeoutMs: 0 }))
      assert.strictEqual(bad._tag, "Invalid")
      const neg = yield* Effect.flip(DmaResv.waitTimeout(resv, "read", { timeoutMs: -5 }))
      assert.strictEqual(neg._tag, "Invalid")
    })
  )
})

describe("lock wrappers and the Held witness", () => {
  it.effect("lock with a ctx: locking_ctx, Already on relock, trylock busy for another task", () =>
    Effect.gen(function* () {
      const resv = DmaResv.make("wrap")
      const ctx = yield* WwMutex.acquireCtx(WwMutex.reservationWwClass)
      const held = yield* DmaResv.lock(resv, ctx)
      assert.strictEqual(DmaResv.lockingCtx(resv), ctx)
      const again = yield* Effect.flip(DmaResv.lock(resv, ctx))
      assert.strictEqual(again._tag, "Already")
      const other = yield* Effect.forkChild(DmaResv.trylock(resv)).pipe(Effect.flatMap(Fiber.join))
      assert.isUndefined(other, "dma_resv_trylock: busy")
      yield* DmaResv.unlock(held)
      const mine = yield* DmaResv.trylock(resv)
      assert.isDefined(mine)
      assert.isUndefined(DmaResv.lockingCtx(resv), "trylock takes no ctx")
      yield* DmaResv.unlock(mine!)
    })
  )

  it.effect("ABBA through the resv wrappers: the younger ctx gets Deadlock, backs off, slow-locks", () =>
    Effect.gen(function* () {
      const [a, b] = [DmaResv.make("A"), DmaResv.make("B")]
      const older = yield* WwMutex.acquireInit(WwMutex.reservationWwClass)
      const heldA = yield* DmaResv.lock(a, older)
      const younger = yield* Effect.forkChild(
        Effect.scoped(
          Effect.gen(function* () {
            const ctx = yield* WwMutex.acquireCtx(WwMutex.reservationWwClass)
            const hb = yield* DmaResv.lock(b, ctx)
            const e = yield* Effect.flip(DmaResv.lockInterruptible(a, ctx))
            assert.strictEqual(e._tag, "Deadlock")
            yield* DmaResv.unlock(hb)
            const ha = yield* DmaResv.lockSlowInterruptible(a, ctx)
            const hb2 = yield* DmaResv.lock(b, ctx)
            yield* DmaResv.unlock(hb2)
            yield* DmaResv.unlock(ha)
            return ctx.stamp
          })
        )
      )
      for (let i = 0; i < 10; i++) yield* Effect.yieldNow
      yield* DmaResv.unlock(heldA)
      yield* WwMutex.acquireFini(older)
      assert.isAbove(yield* Fiber.join(younger), older.stamp)
      assert.isFalse(DmaResv.isLocked(a) || DmaResv.isLocked(b))
    })
  )

  it.effect("interruptible lock without a ctx fails with Interrupted on a signal; the plain one waits", () =>
    Effect.gen(function* () {
      const resv = DmaResv.make("intr")
      const held = yield* DmaResv.lock(resv)
      const intr = yield* Effect.forkChild(DmaResv.lockInterruptible(resv))
      const plain = yield* Effect.forkChild(Effect.flatMap(DmaResv.lock(resv), DmaResv.unlock))
      for (let i = 0; i < 5; i++) yield* Effect.yieldNow
      yield* Task.signal(intr.id)
      yield* Task.signal(plain.id)
      const e = yield* Effect.flip(Fiber.join(intr))
      assert.strictEqual(e._tag, "Interrupted")
      for (let i = 0; i < 5; i++) yield* Effect.yieldNow
      assert.isUndefined(plain.pollUnsafe(), "uninterruptible lock keeps sleeping")
      yield* DmaResv.unlock(held)
      yield* Fiber.join(plain)
      Task.clearSignal(intr.id)
      Task.clearSignal(plain.id)
      assert.isFalse(DmaResv.isLocked(resv))
    })
  )

  it.effect("Held operations assert the lock at run time: stale witness, foreign task", () =>
    Effect.gen(function* () {
      const resv = DmaResv.make("witness")
      const held = yield* DmaResv.lock(resv)
      yield* DmaResv.reserveFences(held, 1)
      assert.strictEqual(yield* DmaResv.assertHeld(held), resv)
      const foreign = yield* Effect.forkChild(
        DmaResv.addFence(held, DmaFence.make(DmaFence.contextAlloc("f")), "write")
      )
      assert.isTrue(Exit.hasDies(yield* Fiber.await(foreign)), "another task cannot use my witness")
      yield* DmaResv.unlock(held)
      assert.isTrue(Exit.hasDies(yield* Effect.exit(DmaResv.assertHeld(held))))
      assert.isTrue(Exit.hasDies(yield* Effect.exit(DmaResv.reserveFences(held, 1))), "stale witness")
      assert.throws(() => DmaResv.iter(held, "read"))
      assert.strictEqual(resv.fenceCount, 0)
    })
  )

  it.effect("lockScoped unlocks when the scope closes, on success and on interruption", () =>
    Effect.gen(function* () {
      const resv = DmaResv.make("scoped")
      yield* Effect.scoped(Effect.flatMap(DmaResv.lockScoped(resv), (h) => DmaResv.reserveFences(h, 1)))
      assert.isFalse(DmaResv.isLocked(resv))
      const f = yield* Effect.forkChild(Effect.scoped(Effect.andThen(DmaResv.lockScoped(resv), Effect.never)))
      for (let i = 0; i < 3; i++) yield* Effect.yieldNow
      assert.isTrue(DmaResv.isLocked(resv))
      yield* Fiber.interrupt(f)
      assert.isFalse(DmaResv.isLocked(resv))
    })
  )

  it("a missing witness does not compile", () => {
    const resv = DmaResv.make("types")
    const f = DmaFence.signaled()
    const typeOnly = () => {
      // @ts-expect-error a DmaResv is not a Held<DmaResv>: lock it first
      DmaResv.addFence(resv, f, "write")
      // @ts-expect-error reserve_fences needs the lock too
      DmaResv.reserveFences(resv, 1)
      // @ts-expect-error and so does the locked iterator
      DmaResv.iter(resv, "read")
      // @ts-expect-error a witness of another lock type does not fit
      DmaResv.copyFences({ target: resv }, resv)
    }
    assert.isFunction(typeOnly)
  })
})
