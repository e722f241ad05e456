import { CurrentTraceSink, collectingSink, Invalid } from "@drmkit/core"
import { DmaFence, Task } from "@drmkit/resv-locking"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Fiber } from "effect"
import { TestClock } from "effect/testing"

describe("dma_fence basics", () => {
  it("contexts are unique and start at 1; seqnos default to the next on the context", () => {
    const a = DmaFence.contextAlloc("a")
    const b = DmaFence.contextAlloc("b")
    assert.isAtLeast(a.id, 1)
    assert.notStrictEqual(a.id, b.id)
    assert.strictEqual(DmaFence.make(a).seqno, 1)
    assert.strictEqual(DmaFence.make(a).seqno, 2)
    assert.strictEqual(DmaFence.make(a, 10).seqno, 10)
    assert.strictEqual(DmaFence.make(a).seqno, 11)
    assert.strictEqual(DmaFence.make(b).seqno, 1)
  })

  it("rejects negative, fractional and unsafe seqnos with Invalid", () => {
    const ctx = DmaFence.contextAlloc("bad")
    for (const bad of [-1, 0.5, Number.NaN, 2 ** 60]) {
      assert.throws(() => DmaFence.make(ctx, bad), Invalid)
    }
    assert.strictEqual(DmaFence.make(ctx).seqno, 1, "a rejected seqno does not advance the timeline")
  })

  it("signals once, with an optional error (dma_fence_signal / set_error)", () => {
    const ctx = DmaFence.contextAlloc("sig")
    const f = DmaFence.make(ctx)
    assert.isFalse(f.isSignaled)
    assert.strictEqual(f.status, 0)
    assert.isTrue(f.signal())
    assert.isTrue(f.isSignaled)
    assert.strictEqual(f.status, 1)
    assert.isFalse(f.signal(new Error("late")), "second signal is refused")
    assert.isUndefined(f.error)
    const g = DmaFence.make(ctx)
    const err = new Error("gpu hang")
    assert.isTrue(g.signal(err))
    assert.strictEqual(g.error, err)
    assert.strictEqual(g.status, -1)
    assert.isNumber(g.timestamp)
  })

  it("runs callbacks once, in order; none after signalling; removable", () => {
    const f = DmaFence.make(DmaFence.contextAlloc("cb"))
    const seen: Array<string> = []
    const a = () => void seen.push("a")
    const b = () => void seen.push("b")
    const c = () => void seen.push("c")
    assert.isTrue(f.addCallback(a))
    assert.isTrue(f.addCallback(b))
    assert.isTrue(f.addCallback(c))
    assert.isTrue(f.removeCallback(b))
    assert.isFalse(f.removeCallback(b))
    assert.strictEqual(f.callbackCount, 2)
    f.signal()
    f.signal()
    assert.deepStrictEqual(seen, ["a", "c"])
    assert.isFalse(f.addCallback(a), "already signalled: not registered")
    assert.isFalse(f.removeCallback(a))
    assert.deepStrictEqual(seen, ["a", "c"])
  })

  it("orders fences of one context (is_later / is_later_or_same), 64-bit seqnos", () => {
    const ctx = DmaFence.contextAlloc("order")
    const f1 = DmaFence.make(ctx, 1)
    const f2 = DmaFence.make(ctx, 2)
    const big = DmaFence.make(ctx, 2 ** 40)
    assert.isTrue(DmaFence.isLater(f2, f1))
    assert.isFalse(DmaFence.isLater(f1, f2))
    assert.isFalse(DmaFence.isLater(f1, f1))
    assert.isTrue(DmaFence.isLaterOrSame(f1, f1))
    assert.isTrue(DmaFence.isLaterOrSame(DmaFence.make(ctx, 2), f2), "same seqno counts as same")
    assert.isFalse(DmaFence.isLaterOrSame(f1, f2))
    assert.isTrue(DmaFence.isLater(big, f2), "no 32-bit wrap")
    const other = DmaFence.make(DmaFence.contextAlloc("other"), 5)
    assert.throws(() => DmaFence.isLater(other, f1), Invalid)
    assert.throws(() => DmaFence.isLaterOrSame(other, f1), Invalid)
  })

  it("provides an already-signalled stub", () => {
    const s = DmaFence.signaled()
    assert.isTrue(s.isSignaled)
    assert.strictEqual(s.context.id, 0)
    assert.strictEqual(DmaFence.signaled(), s)
    const ctx = DmaFence.contextAlloc("stubby")
    const p = DmaFence.signaled(ctx)
    assert.isTrue(p.isSignaled)
    assert.strictEqual(p.context, ctx)
  })
})

describe("dma_fence_wait_timeout", () => {
  it.effect("signalled fence: remaining budget, Infinity without timeout, 1 for a zero poll", () =>
    Effect.gen(function* () {
      const f = DmaFence.signaled(DmaFence.contextAlloc("w"))
      assert.strictEqual(yield* DmaFence.wait(f), Number.POSITIVE_INFINITY)
      assert.strictEqual(yield* DmaFence.wait(f, { timeoutMs: 50 }), 50)
      assert.strictEqual(yield* DmaFence.wait(f, { timeoutMs: 0 }), 1)
    })
  )

  it.effect("zero timeout on a pending fence polls: 0, no waiter left", () =>
    Effect.gen(function* () {
      const f = DmaFence.make(DmaFence.contextAlloc("w"))
      assert.strictEqual(yield* DmaFence.wait(f, { timeoutMs: 0 }), 0)
      assert.strictEqual(f.callbackCount, 0)
    })
  )

  it.effect("times out with 0 and removes its waiter", () =>
    Effect.gen(function* () {
      const f = DmaFence.make(DmaFence.contextAlloc("w"))
      const waiter = yield* Effect.forkChild(DmaFence.wait(f, { timeoutMs: 100 }))
      yield* Effect.yieldNow
      assert.strictEqual(f.callbackCount, 1)
      yield* TestClock.adjust(99)
      assert.isUndefined(waiter.pollUnsafe())
      yield* TestClock.adjust(1)
      assert.strictEqual(yield* Fiber.join(waiter), 0)
      assert.strictEqual(f.callbackCount, 0)
    })
  )

  it.effect("returns the remaining budget when signalled in time", () =>
    Effect.gen(function* () {
      const f = DmaFence.make(DmaFence.contextAlloc("w"))
      const waiter = yield* Effect.forkChild(DmaFence.wait(f, { timeoutMs: 100 }))
      yield* Effect.yieldNow
      yield* TestClock.adjust(30)
      yield* DmaFence.signal(f)
      assert.strictEqual(yield* Fiber.join(waiter), 70)
      const g = DmaFence.make(f.context)
      const forever = yield* Effect.forkChild(DmaFence.wait(g))
      yield* Effect.yieldNow
      g.signal()
      assert.strictEqual(yield* Fiber.join(forever), Number.POSITIVE_INFINITY)
    })
  )

  it.effect("interruptible wait fails with RestartSys when the task is signalled", () =>
    Effect.gen(function* () {
      const f = DmaFence.make(DmaFence.contextAlloc("w"))
      const waiter = yield* Effect.forkChild(DmaFence.wait(f, { interruptible: true }))
      yield* Effect.yieldNow
      yield* Task.signal(waiter.id)
      const exit = yield* Fiber.await(waiter)
      assert.isTrue(Exit.isFailure(exit))
      assert.strictEqual(Exit.isFailure(exit) ? String(exit.cause.reasons[0]?._tag) : "", "Fail")
      assert.include(String(Exit.isFailure(exit) ? JSON.stringify(exit.cause) : ""), "RestartSys")
      assert.strictEqual(f.callbackCount, 0, "waiter removed")
      Task.clearSignal(waiter.id)
    })
  )

  it.effect("a pending signal fails an interruptible wait at once; uninterruptible waits ignore it", () =>
    Effect.gen(function* () {
      const f = DmaFence.make(DmaFence.contextAlloc("w"))
      const me = yield* Task.current
      yield* Task.signal(me)
      const r = yield* Effect.flip(DmaFence.wait(f, { interruptible: true, timeoutMs: 10 }))
      assert.strictEqual(r._tag, "RestartSys")
      assert.strictEqual(r.errno, 512)
      const waiter = yield* Effect.forkChild(DmaFence.wait(f, { timeoutMs: 10 }))
      yield* Effect.yieldNow
      yield* Task.signal(waiter.id)
      yield* TestClock.adjust(5)
      f.signal()
      assert.strictEqual(yield* Fiber.join(waiter), 5)
      Task.clearSignal(me)
      Task.clearSignal(waiter.id)
    })
  )

  it.effect("a signalled fence wins over a pending signal (checked first, as in the kernel)", () =>
    Effect.gen(function* () {
      const me = yield* Task.current
      yield* Task.signal(me)
      const left = yield* DmaFence.wait(DmaFence.signaled(), { interruptible: true, timeoutMs: 3 })
      assert.strictEqual(left, 3)
      Task.clearSignal(me)
    })
  )

  it.effect("fiber interruption removes the waiter", () =>
    Effect.gen(function* () {
      const f = DmaFence.make(DmaFence.contextAlloc("w"))
      const waiter = yield* Effect.forkChild(DmaFence.wait(f, { interruptible: true }))
      yield* Effect.yieldNow
      assert.strictEqual(f.callbackCount, 1)
      yield* Fiber.interrupt(waiter)
      assert.strictEqual(f.callbackCount, 0)
    })
  )

  it.effect("a negative timeout is a defect", () =>
    Effect.gen(function* () {
      const exit = yield* Effect.exit(DmaFence.wait(DmaFence.make(DmaFence.contextAlloc("w")), { timeoutMs: -1 }))
      assert.isTrue(Exit.hasDies(exit))
    })
  )
})

describe("dma_fence_array", () => {
  it("signals when all components signal, with the first error", () => {
    const ctx = DmaFence.contextAlloc("c")
    const [a, b, c] = [DmaFence.make(ctx), DmaFence.make(ctx), DmaFence.make(ctx)]
    const arr = new DmaFence.FenceArray([a, b, c])
    assert.isTrue(DmaFence.isContainer(arr))
    assert.isFalse(DmaFence.isContainer(a))
    assert.notStrictEqual(arr.context, ctx, "a fresh context by default")
    const err = new Error("b failed")
    b.signal(err)
    a.signal()
    assert.isFalse(arr.isSignaled)
    c.signal(new Error("c failed too"))
    assert.isTrue(arr.isSignaled)
    assert.strictEqual(arr.error, err)
  })

  it("signal-on-any signals with the first component and unhooks from the rest", () => {
    const ctx = DmaFence.contextAlloc("c")
    const [a, b] = [DmaFence.make(ctx), DmaFence.make(ctx)]
    const arr = new DmaFence.FenceArray([a, b], { signalOnAny: true })
    assert.strictEqual(b.callbackCount, 1)
    a.signal()
    assert.isTrue(arr.isSignaled)
    assert.strictEqual(b.callbackCount, 0)
  })

  it("is born signalled when empty or when every component already signalled", () => {
    assert.isTrue(new DmaFence.FenceArray([]).isSignaled)
    const ctx = DmaFence.contextAlloc("c")
    assert.isTrue(new DmaFence.FenceArray([DmaFence.signaled(ctx), DmaFence.signaled(ctx)]).isSignaled)
  })

  it.effect("rejects nested containers with Invalid", () =>
    Effect.gen(function* () {
      const inner = new DmaFence.FenceArray([DmaFence.make(DmaFence.contextAlloc("c"))])
      const e = yield* Effect.flip(DmaFence.makeArray([inner]))
      assert.instanceOf(e, Invalid)
      const ok = yield* DmaFence.makeArray([DmaFence.signaled()])
      assert.isTrue(ok.isSignaled)
    })
  )

  it.effect("can be waited on like any fence", () =>
    Effect.gen(function* () {
      const ctx = DmaFence.contextAlloc("c")
      const [a, b] = [DmaFence.make(ctx), DmaFence.make(ctx)]
      const arr = new DmaFence.FenceArray([a, b])
      const w = yield* Effect.forkChild(DmaFence.wait(arr, { timeoutMs: 10 }))
      yield* Effect.yieldNow
      a.signal()
      b.signal()
      assert.strictEqual(yield* Fiber.join(w), 10)
    })
  )
})

describe("dma_fence tracing", () => {
  it.effect("emits dma_fence events to the current sink when enabled", () =>
    Effect.gen(function* () {
      const sink = collectingSink()
      const f = DmaFence.make(DmaFence.contextAlloc("ring0"))
      const program = Effect.gen(function* () {
        const w = yield* Effect.forkChild(DmaFence.wait(f, { timeoutMs: 10 }))
        yield* Effect.yieldNow
        assert.isTrue(yield* DmaFence.signal(f))
        assert.isFalse(yield* DmaFence.signal(f))
        yield* Fiber.join(w)
      })
      yield* program.pipe(Effect.provideService(CurrentTraceSink, sink))
      assert.deepStrictEqual(
        sink.events.map((e) => [e.cat, e.name, e.ph, e.tid]),
        [
          ["dma_fence", "dma_fence_signaled", "i", "ring0"],
          ["dma_fence", "dma_fence_wait", "X", "ring0"]
        ]
      )
      assert.deepStrictEqual(sink.events[0]?.args, { context: f.context.id, seqno: 1 })
    })
  )
})
