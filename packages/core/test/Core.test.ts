import {
  Already,
  Bytes,
  CurrentTraceSink,
  checkInt,
  checkU64,
  collectingSink,
  Deadlock,
  Errno,
  GpuVa,
  Invalid,
  NoSpace,
  PAGE_SIZE,
  PageCount,
  U64_MAX
} from "@drmkit/core"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit } from "effect"

describe("errors", () => {
  it.effect("carry their errno and context, and are catchable by tag", () =>
    Effect.gen(function* () {
      const e = new Deadlock({ lock: "bo7" })
      assert.strictEqual(e._tag, "Deadlock")
      assert.strictEqual(e.errno, Errno.EDEADLK)
      assert.include(e.message, "bo7")
      const r = yield* Effect.fail(new Already({ lock: "bo1" })).pipe(
        Effect.catchTag("Already", (a) => Effect.succeed(a.errno))
      )
      assert.strictEqual(r, 114)
      assert.include(new NoSpace({ what: "vram", requested: 8192, available: 4096 }).message, "4096 free")
    })
  )
})

describe("validation", () => {
  it("rejects negative, fractional, non-numbers, out-of-range and misaligned values", () => {
    assert.isUndefined(checkInt("n", 4096, { multipleOf: PAGE_SIZE }))
    for (const bad of [-1, 0.5, Number.NaN, Infinity, "4096", 2 ** 60]) {
      assert.instanceOf(checkInt("n", bad), Invalid)
    }
    assert.match(checkInt("n", 100, { multipleOf: 64 })?.reason ?? "", /multiple of 64/)
    assert.match(checkInt("n", 9, { max: 8 })?.reason ?? "", /<= 8/)
  })
  it("checks the whole u64 range exactly", () => {
    assert.isUndefined(checkU64("va", U64_MAX))
    assert.instanceOf(checkU64("va", U64_MAX + 1n), Invalid)
    assert.instanceOf(checkU64("va", -1n), Invalid)
    assert.instanceOf(checkU64("va", 1), Invalid)
    assert.instanceOf(checkU64("va", 0x1001n, { multipleOf: 0x1000n }), Invalid)
  })
})

describe("units", () => {
  it.effect("validating constructors", () =>
    Effect.gen(function* () {
      assert.strictEqual(yield* Bytes.make(8192), 8192)
      const bad = yield* Effect.exit(Bytes.makePageAligned(100))
      assert.isTrue(Exit.isFailure(bad))
      assert.strictEqual(PageCount.ofBytes(Bytes.unsafe(4097)), 2)
      assert.strictEqual(PageCount.toBytes(PageCount.unsafe(3)), 3 * PAGE_SIZE)
      assert.strictEqual(yield* GpuVa.make(1n << 63n), 1n << 63n)
      assert.isFalse(GpuVa.is(1n << 64n))
    })
  )
})

describe("trace", () => {
  it.effect("the current sink defaults to no-op and can be replaced", () =>
    Effect.gen(function* () {
      assert.isFalse((yield* CurrentTraceSink).enabled)
      const sink = collectingSink()
      yield* Effect.gen(function* () {
        const s = yield* CurrentTraceSink
        s.emit({ name: "x", cat: "test", ph: "i", ts: 0 })
      }).pipe(Effect.provideService(CurrentTraceSink, sink))
      assert.strictEqual(sink.events.length, 1)
    })
  )
})
