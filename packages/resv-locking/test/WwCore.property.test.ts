/**
 * The synchronous core on its own (no Effect): random sequences of lock / trylock / unlock /
 * ctx init / fini by several tasks keep the ownership bookkeeping consistent — every mutex has at
 * most one owner, `lock->ctx` and `ctx->acquired` agree, `Already` only for the ctx's own mutex,
 * `Deadlock` only from injection with more than one lock held, and fini leaves nothing held.
 */
import { Lockdep, WwMutex } from "@drmkit/resv-locking"
import { assert, describe, it } from "@effect/vitest"
import fc from "fast-check"

const C = WwMutex.SyncCode

type Op =
  | { readonly kind: "lock" | "trylock" | "unlock"; readonly task: number; readonly m: number; readonly ctx: boolean }
  | { readonly kind: "init" | "fini"; readonly task: number }

const arbOp = (tasks: number, locks: number): fc.Arbitrary<Op> =>
  fc.oneof(
    {
      arbitrary: fc.record({
        kind: fc.constantFrom("lock" as const, "trylock" as const, "unlock" as const),
        task: fc.integer({ min: 1, max: tasks }),
        m: fc.nat(locks - 1),
        ctx: fc.boolean()
      }),
      weight: 8
    },
    {
      arbitrary: fc.record({
        kind: fc.constantFrom("init" as const, "fini" as const),
        task: fc.integer({ min: 1, max: tasks })
      }),
      weight: 2
    }
  )

const invariants = (locks: ReadonlyArray<WwMutex.WwMutex>, ctxs: ReadonlyMap<number, WwMutex.AcquireCtx>) => {
  for (const m of locks) {
    const ctx = m.lockingCtx
    if (!m.isLocked) assert.isUndefined(ctx, `${m.name} unlocked but has a ctx`)
    if (ctx !== undefined) {
      assert.strictEqual(m.ownerTask, ctx.task, `${m.name} owner differs from its ctx's task`)
      assert.strictEqual(ctx.held.filter((x) => x === m).length, 1, `${m.name} not tracked once by its ctx`)
    }
  }
  for (const ctx of ctxs.values()) {
    for (const m of ctx.held) assert.strictEqual(m.lockingCtx, ctx, `${ctx.stamp} tracks ${m.name} it does not hold`)
    assert.strictEqual(ctx.acquired, ctx.held.length)
  }
}

describe("synchronous ww core (fast-check)", () => {
  it("random operation sequences keep ownership consistent", () => {
    Lockdep.configure({ strict: false })
    fc.assert(
      fc.property(
        fc.constantFrom("wait-die" as const, "wound-wait" as const),
        fc.boolean(),
        fc.array(arbOp(3, 5), { minLength: 1, maxLength: 120 }),
        (alg, injection, ops) => {
          const cls = alg === "wait-die" ? WwMutex.WwClass.waitDie("core") : WwMutex.WwClass.woundWait("core")
          const locks = Array.from({ length: 5 }, (_, i) => WwMutex.make(cls, `c${i}`))
          const ctxs = new Map<number, WwMutex.AcquireCtx>()
          for (const op of ops) {
            if (op.kind === "init") {
              if (!ctxs.has(op.task)) {
                const ctx = WwMutex.acquireInitSync(cls, op.task, { injection })
                if (ctx !== undefined) ctxs.set(op.task, ctx)
              }
            } else if (op.kind === "fini") {
              const ctx = ctxs.get(op.task)
              if (ctx !== undefined) {
                WwMutex.acquireFiniSync(ctx, op.task)
                assert.strictEqual(ctx.acquired, 0)
                ctxs.delete(op.task)
              }
            } else if ("m" in op) {
              const m = locks[op.m] as WwMutex.WwMutex
              const ctx = op.ctx ? ctxs.get(op.task) : undefined
              if (op.kind === "unlock") {
                if (m.ownerTask === op.task) assert.strictEqual(WwMutex.unlockSync(m, op.task), C.OK)
              } else if (op.kind === "trylock") {
                const before = m.ownerTask
                const code = WwMutex.trylockSync(m, ctx, op.task)
                assert.include([C.OK, C.BUSY], code)
                assert.strictEqual(code === C.OK, before === undefined)
              } else if (m.ownerTask !== op.task || (ctx !== undefined && m.lockingCtx === ctx)) {
                const acquired = ctx?.acquired ?? 0
                const mine = ctx !== undefined && m.lockingCtx === ctx
                const code = WwMutex.lockSync(m, ctx, op.task)
                if (mine) assert.strictEqual(code, C.ALREADY)
                if (code === C.DEADLK) {
                  assert.isTrue(injection && acquired >= 1, "Deadlock without injection on the sync path")
                  assert.isFalse(m.isLocked && m.ownerTask === op.task, "injected mutex was unlocked again")
                  assert.strictEqual(ctx?.contendingLock, m)
                  for (const h of [...(ctx?.held ?? [])]) WwMutex.unlockSync(h, op.task) // back off
                } else assert.include([C.OK, C.BUSY, C.ALREADY], code)
                if (code === C.OK) assert.strictEqual(m.ownerTask, op.task)
              }
            }
            invariants(locks, ctxs)
          }
          for (const [task, ctx] of ctxs) WwMutex.acquireFiniSync(ctx, task)
          for (const m of locks) if (m.ownerTask !== undefined) WwMutex.unlockSync(m, m.ownerTask)
          assert.isTrue(locks.every((m) => !m.isLocked))
        }
      ),
      { numRuns: 300 }
    )
  })
})
