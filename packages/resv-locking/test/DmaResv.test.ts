// The st-dma-resv.c shapes (per usage), usage filters, bad input, the add_fence replacement and
// promotion rules and fence slots. Snapshots, waits, lock wrappers: DmaResv.lock.test.ts.
import { Invalid } from "@drmkit/core"
import { DmaFence, DmaResv, Lockdep } from "@drmkit/resv-locking"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Fiber } from "effect"
import { entries, locked, setup, table, usages, withFence } from "./resvHelpers.ts"

describe("st-dma-resv", () => {
  it.effect("sanitycheck: init, lock without ctx, unlock, fini", () =>
    Effect.gen(function* () {
      DmaFence.make(DmaFence.contextAlloc("x")).signal()
      const resv = DmaResv.make("sanity")
      const held = yield* DmaResv.lock(resv)
      assert.isTrue(DmaResv.isLocked(resv))
      assert.isTrue(DmaResv.isHeld(resv))
      assert.isUndefined(DmaResv.lockingCtx(resv), "locked without a ctx")
      yield* DmaResv.unlock(held)
      assert.isFalse(DmaResv.isLocked(resv))
      yield* DmaResv.fini(resv)
      const e = yield* Effect.flip(DmaResv.lock(resv))
      assert.strictEqual(e._tag, "Invalid", "a finished resv cannot be locked")
    })
  )

  for (const usage of usages) {
    it.effect(`signaling (${usage})`, () =>
      Effect.gen(function* () {
        const { resv, f } = yield* withFence(usage)
        assert.isFalse(yield* DmaResv.testSignaled(resv, usage), "unexpectedly signaled")
        f.signal()
        assert.isTrue(yield* DmaResv.testSignaled(resv, usage), "not reporting signaled")
      })
    )

    it.effect(`for_each (${usage}): one fence, its usage, signalled ones too`, () =>
      Effect.gen(function* () {
        const { resv, f } = yield* withFence(usage)
        assert.deepStrictEqual(yield* entries(resv, usage), [[f, usage]])
        f.signal()
        assert.deepStrictEqual(yield* entries(resv, usage), [[f, usage]], "locked walk yields signalled fences")
        const first = yield* locked(resv, (held) =>
          Effect.sync(() => {
            const it = DmaResv.iter(held, usage)
            const fence = it.first()
            return { fence, restarted: it.isRestarted, next: it.next(), after: it.isRestarted }
          })
        )
        assert.deepStrictEqual(first, { fence: f, restarted: true, next: undefined, after: false })
      })
    )

    it.effect(`for_each_unlocked (${usage}): restart flag, restart on a replaced table`, () =>
      Effect.gen(function* () {
        const { resv, f } = yield* withFence(usage)
        const it = DmaResv.iterUnlocked(resv, usage)
        assert.strictEqual(it.first(), f)
        assert.isTrue(it.isRestarted, "no restart flag")
        assert.strictEqual(it.usage, usage)
        // another task grows the table meanwhile: the published list is replaced
        yield* Effect.forkChild(locked(resv, (held) => DmaResv.reserveFences(held, 64))).pipe(
          Effect.flatMap(Fiber.join)
        )
        assert.strictEqual(it.next(), f, "restarted from the beginning")
        assert.isTrue(it.isRestarted)
        assert.isUndefined(it.next())
        f.signal()
        assert.isUndefined(DmaResv.iterUnlocked(resv, usage).first(), "unlocked walk skips signalled fences")
      })
    )

    it.effect(`get_fences (${usage})`, () =>
      Effect.gen(function* () {
        const { resv, f } = yield* withFence(usage)
        assert.deepStrictEqual(yield* DmaResv.getFences(resv, usage), [f])
        f.signal()
        assert.deepStrictEqual(yield* DmaResv.getFences(resv, usage), [])
      })
    )
  }
})

describe("usage classes", () => {
  it("orders KERNEL < WRITE < READ < BOOKKEEP; usage_rw looks inverted on purpose", () => {
    assert.isBelow(DmaResv.compareUsage("kernel", "write"), 0)
    assert.isBelow(DmaResv.compareUsage("write", "read"), 0)
    assert.isBelow(DmaResv.compareUsage("read", "bookkeep"), 0)
    assert.strictEqual(DmaResv.usageRw(true), "read")
    assert.strictEqual(DmaResv.usageRw(false), "write")
    assert.deepStrictEqual(Object.values(DmaResv.Usage), usages)
  })

  it.effect("a query for U sees usages <= U only", () =>
    Effect.gen(function* () {
      const resv = DmaResv.make("filters")
      const byUsage = new Map(usages.map((u) => [u, DmaFence.make(DmaFence.contextAlloc(u))]))
      yield* locked(resv, (held) =>
        Effect.forEach(usages, (u) =>
          Effect.andThen(DmaResv.reserveFences(held, 1), DmaResv.addFence(held, byUsage.get(u)!, u))
        )
      )
      for (const [i, q] of usages.entries()) {
        const want = usages.slice(0, i + 1).map((u) => byUsage.get(u)!)
        assert.deepStrictEqual(yield* DmaResv.getFences(resv, q), want, `query ${q}`)
        assert.deepStrictEqual(
          (yield* entries(resv, q)).map(([f]) => f),
          want
        )
      }
      byUsage.get("kernel")!.signal()
      byUsage.get("write")!.signal()
      byUsage.get("read")!.signal()
      assert.isTrue(yield* DmaResv.testSignaled(resv, "read"), "an unsignalled BOOKKEEP fence is ignored for READ")
      assert.isFalse(yield* DmaResv.testSignaled(resv, "bookkeep"))
    })
  )
})

describe("bad input", () => {
  it.effect("an unknown usage is Invalid for every API that takes one, and changes nothing", () =>
    Effect.gen(function* () {
      const { resv, f } = yield* withFence("read")
      const bogus = "exclusive" as DmaResv.Usage
      const held = yield* DmaResv.lock(resv)
      yield* DmaResv.reserveFences(held, 1)
      const slots = resv.freeSlots
      const failures = [
        DmaResv.getFences(resv, bogus),
        DmaResv.getSingleton(resv, bogus),
        DmaResv.testSignaled(resv, bogus),
        DmaResv.waitTimeout(resv, bogus),
        DmaResv.addFence(held, DmaFence.make(f.context), bogus),
        DmaResv.replaceFences(held, f.context, DmaFence.make(f.context), bogus)
      ]
      for (const op of failures) assert.instanceOf(yield* Effect.flip(op), Invalid)
      assert.throws(() => DmaResv.iter(held, bogus), Invalid)
      assert.throws(() => DmaResv.iterUnlocked(resv, bogus), Invalid)
      assert.throws(() => DmaResv.compareUsage(bogus, "read"), Invalid)
      assert.deepStrictEqual([...DmaResv.iter(held, "bookkeep")], [f], "the table is unchanged")
      assert.strictEqual(resv.freeSlots, slots)
      yield* DmaResv.unlock(held)
    })
  )
})

describe("dma_resv_add_fence rules", () => {
  it.effect("same context, later-or-same fence, usage >= new: replaced in place (incl. the same fence twice)", () =>
    Effect.gen(function* () {
      const { resv, held, ctx } = yield* setup(1)
      const [f1, f2] = [DmaFence.make(ctx), DmaFence.make(ctx)]
      yield* DmaResv.addFence(held, f1, "read")
      yield* DmaResv.addFence(held, f1, "read")
      assert.strictEqual(resv.fenceCount, 1, "same fence twice takes one slot (is_later_or_same)")
      yield* DmaResv.addFence(held, f2, "read")
      assert.deepStrictEqual(table(held), [[f2, "read"]])
      yield* DmaResv.unlock(held)
    })
  )

  it.effect("promotion only: a stronger usage replaces, a weaker one appends", () =>
    Effect.gen(function* () {
      const { held, ctx } = yield* setup(2)
      const [f1, f2, f3] = [DmaFence.make(ctx), DmaFence.make(ctx), DmaFence.make(ctx)]
      yield* DmaResv.addFence(held, f1, "read")
      yield* DmaResv.addFence(held, f2, "write")
      assert.deepStrictEqual(table(held), [[f2, "write"]], "promoted READ -> WRITE in place")
      yield* DmaResv.addFence(held, f3, "read")
      assert.deepStrictEqual(
        table(held),
        [
          [f2, "write"],
          [f3, "read"]
        ],
        "no degradation: WRITE stays, READ appended"
      )
      yield* DmaResv.unlock(held)
    })
  )

  it.effect("same context, older seqno: appended, not replaced", () =>
    Effect.gen(function* () {
      const { held, ctx } = yield* setup(2)
      const [f1, f2] = [DmaFence.make(ctx), DmaFence.make(ctx)]
      yield* DmaResv.addFence(held, f2, "write")
      yield* DmaResv.addFence(held, f1, "write")
      assert.deepStrictEqual(table(held), [
        [f2, "write"],
        [f1, "write"]
      ])
      yield* DmaResv.unlock(held)
    })
  )

  it.effect("a signalled entry is recycled by any fence, without a slot", () =>
    Effect.gen(function* () {
      const { resv, held, ctx } = yield* setup(1)
      const old = DmaFence.make(ctx)
      yield* DmaResv.addFence(held, old, "kernel")
      assert.strictEqual(resv.freeSlots, 4, "4 fences rounded up to the 64-byte bucket = 5 slots")
      while (resv.freeSlots > 0) yield* DmaResv.addFence(held, DmaFence.make(DmaFence.contextAlloc("fill")), "bookkeep")
      old.signal()
      const other = DmaFence.make(DmaFence.contextAlloc("other"))
      yield* DmaResv.addFence(held, other, "bookkeep")
      assert.strictEqual(table(held)[0]?.[0], other, "replaced the signalled entry in place")
      assert.deepStrictEqual(table(held)[0]?.[1], "bookkeep")
      yield* DmaResv.unlock(held)
    })
  )

  it.effect("an append without a reserved slot is a defect (BUG_ON); a replacement needs none", () =>
    Effect.gen(function* () {
      const resv = DmaResv.make("noslot")
      const held = yield* DmaResv.lock(resv)
      const ctx = DmaFence.contextAlloc("ring")
      const exit = yield* Effect.exit(DmaResv.addFence(held, DmaFence.make(ctx), "write"))
      assert.isTrue(Exit.hasDies(exit))
      assert.strictEqual(resv.fenceCount, 0)
      yield* DmaResv.reserveFences(held, 1)
      yield* DmaResv.addFence(held, DmaFence.make(ctx), "write")
      while (resv.freeSlots > 0) yield* DmaResv.addFence(held, DmaFence.make(DmaFence.contextAlloc("fill")), "read")
      yield* DmaResv.addFence(held, DmaFence.make(ctx), "write")
      assert.isTrue(
        Exit.hasDies(yield* Effect.exit(DmaResv.addFence(held, DmaFence.make(DmaFence.contextAlloc("x")), "write")))
      )
      yield* DmaResv.unlock(held)
    })
  )

  it.effect("containers and unknown usages are Invalid and change nothing", () =>
    Effect.gen(function* () {
      const { resv, held, ctx } = yield* setup(4)
      const f = DmaFence.make(ctx)
      yield* DmaResv.addFence(held, f, "read")
      const before = table(held)
      const arr = new DmaFence.FenceArray([DmaFence.make(ctx)])
      const e1 = yield* Effect.flip(DmaResv.addFence(held, arr, "read"))
      assert.instanceOf(e1, Invalid)
      const e2 = yield* Effect.flip(DmaResv.addFence(held, DmaFence.make(ctx), "exclusive" as DmaResv.Usage))
      assert.instanceOf(e2, Invalid)
      assert.include(e2.message, "dma_resv_usage")
      const e3 = yield* Effect.flip(DmaResv.replaceFences(held, ctx, arr, "read"))
      assert.instanceOf(e3, Invalid)
      assert.deepStrictEqual(table(held), before)
      assert.strictEqual(resv.freeSlots, 4)
      yield* DmaResv.unlock(held)
    })
  )

  it.effect("replace_fences: every entry of the context takes the new fence and usage", () =>
    Effect.gen(function* () {
      const { held, ctx } = yield* setup(3)
      const other = DmaFence.make(DmaFence.contextAlloc("other"))
      const [p1, p2] = [DmaFence.make(ctx), DmaFence.make(ctx)]
      yield* DmaResv.addFence(held, p2, "bookkeep")
      yield* DmaResv.addFence(held, other, "read")
      yield* DmaResv.addFence(held, p1, "bookkeep")
      const pt = DmaFence.make(DmaFence.contextAlloc("pt-update"))
      yield* DmaResv.replaceFences(held, ctx, pt, "kernel")
      assert.deepStrictEqual(table(held), [
        [pt, "kernel"],
        [other, "read"],
        [pt, "kernel"]
      ])
      yield* DmaResv.unlock(held)
    })
  )
})

describe("dma_resv_reserve_fences", () => {
  it.effect("is not additive, grows geometrically and prunes signalled fences on reallocation", () =>
    Effect.gen(function* () {
      const { resv, held } = yield* setup(1)
      assert.strictEqual(resv.freeSlots, 5)
      yield* DmaResv.reserveFences(held, 1)
      yield* DmaResv.reserveFences(held, 1)
      assert.strictEqual(resv.freeSlots, 5, "reserve(1) twice still means one guaranteed slot")
      const fs = Array.from({ length: 5 }, () => DmaFence.make(DmaFence.contextAlloc("g")))
      for (const f of fs) yield* DmaResv.addFence(held, f, "read")
      assert.strictEqual(resv.freeSlots, 0)
      fs[0]!.signal()
      fs[3]!.signal()
      yield* DmaResv.reserveFences(held, 1)
      assert.strictEqual(resv.fenceCount, 3, "signalled fences pruned by the reallocation")
      assert.strictEqual(resv.fenceCount + resv.freeSlots, 13, "max(6, 2*5)=10 -> 128-byte bucket = 13 slots")
      assert.deepStrictEqual(
        table(held).map(([f]) => f),
        [fs[1], fs[2], fs[4]]
      )
      yield* DmaResv.unlock(held)
    })
  )

  it.effect("zero, negative, fractional, NaN and absurd counts are Invalid and change nothing", () =>
    Effect.gen(function* () {
      const { resv, held } = yield* setup(2)
      const before = resv.freeSlots
      for (const bad of [0, -1, 0.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 40]) {
        const e = yield* Effect.flip(DmaResv.reserveFences(held, bad))
        assert.instanceOf(e, Invalid)
      }
      assert.strictEqual(resv.freeSlots, before)
      yield* DmaResv.unlock(held)
    })
  )

  it.effect("strict mode: reservations do not survive an unlock (reset_max_fences)", () =>
    Lockdep.withConfig(
      { strict: true },
      Effect.gen(function* () {
        const { resv, held } = yield* setup(1)
        yield* DmaResv.unlock(held)
        assert.strictEqual(resv.freeSlots, 0)
        const again = yield* DmaResv.lock(resv)
        const exit = yield* Effect.exit(DmaResv.addFence(again, DmaFence.make(DmaFence.contextAlloc("x")), "write"))
        assert.isTrue(Exit.hasDies(exit), "reserve, unlock, relock, add fails loudly")
        yield* DmaResv.unlock(again)
      })
    )
  )

  it.effect("outside strict mode the slots stay (as in a non-debug kernel)", () =>
    Lockdep.withConfig(
      { strict: false },
      Effect.gen(function* () {
        const { resv, held } = yield* setup(1)
        yield* DmaResv.unlock(held)
        assert.strictEqual(resv.freeSlots, 5)
      })
    )
  )
})
