// drm_exec: the drm_exec_test.c KUnit cases and the exec semantics (flags, slots, lifecycle,
// ownership, references). Sub-lists and contention: Exec.contention.test.ts.
import { Invalid } from "@drmkit/core"
import { DmaFence, DmaResv, Exec, Lockdep } from "@drmkit/resv-locking"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Fiber } from "effect"
import { Bo, names } from "./helpers.ts"

describe("drm_exec_test.c", () => {
  it.effect("sanitycheck: init + fini", () =>
    Effect.gen(function* () {
      const exec = yield* Exec.init({ interruptible: true })
      yield* Exec.fini(exec)
      assert.isUndefined(Exec.ticket(exec))
    })
  )

  it.effect("test_lock", () =>
    Effect.gen(function* () {
      const bo = new Bo("gobj")
      const exec = yield* Exec.init<Bo>({ interruptible: true })
      yield* Exec.untilAllLocked(exec, Exec.lock(exec, bo))
      assert.isTrue(DmaResv.isHeld(bo.resv))
      assert.strictEqual(bo.refs, 1)
      yield* Exec.fini(exec)
      assert.isFalse(DmaResv.isLocked(bo.resv))
      assert.strictEqual(bo.refs, 0)
    })
  )

  it.effect("test_lock_unlock", () =>
    Effect.gen(function* () {
      const bo = new Bo("gobj")
      const exec = yield* Exec.init<Bo>({ interruptible: true })
      yield* Exec.untilAllLocked(
        exec,
        Effect.gen(function* () {
          yield* Exec.lock(exec, bo)
          yield* Exec.unlock(exec, bo)
          assert.isFalse(DmaResv.isLocked(bo.resv))
          yield* Exec.lock(exec, bo)
        })
      )
      assert.deepStrictEqual(names(Exec.lockedObjects(exec)), ["gobj"])
      yield* Exec.fini(exec)
      assert.strictEqual(bo.refs, 0)
    })
  )

  it.effect("test_duplicates: IGNORE_DUPLICATES makes a second lock succeed, tracked once", () =>
    Effect.gen(function* () {
      const bo = new Bo("gobj")
      const exec = yield* Exec.init<Bo>({ ignoreDuplicates: true })
      yield* Exec.untilAllLocked(exec, Effect.andThen(Exec.lock(exec, bo), Exec.lock(exec, bo)))
      assert.strictEqual(Exec.lockedObjects(exec).length, 1)
      yield* Exec.unlock(exec, bo)
      yield* Exec.fini(exec)
      assert.isFalse(DmaResv.isLocked(bo.resv))
      assert.strictEqual(bo.refs, 0)
    })
  )

  it.effect("test_prepare: lock + one fence slot", () =>
    Effect.gen(function* () {
      const bo = new Bo("gobj")
      const exec = yield* Exec.init<Bo>({ interruptible: true })
      yield* Exec.untilAllLocked(exec, Exec.prepare(exec, bo, 1))
      assert.isAtLeast(bo.resv.freeSlots, 1)
      yield* DmaResv.addFence(Exec.held(exec, bo), DmaFence.make(DmaFence.contextAlloc("ring")), "write")
      yield* Exec.fini(exec)
    })
  )

  it.effect("test_prepare_array", () =>
    Effect.gen(function* () {
      const bos = [new Bo("gobj1"), new Bo("gobj2")]
      const exec = yield* Exec.init<Bo>({ interruptible: true })
      yield* Exec.untilAllLocked(exec, Exec.prepareArray(exec, bos, 1))
      assert.deepStrictEqual(names(Exec.lockedObjects(exec)), ["gobj1", "gobj2"])
      for (const bo of bos) assert.isAtLeast(bo.resv.freeSlots, 1)
      yield* Exec.fini(exec)
    })
  )

  it.effect("test_multiple_loops: an empty body, twice", () =>
    Effect.gen(function* () {
      for (let i = 0; i < 2; i++) {
        const exec = yield* Exec.init({ interruptible: true })
        yield* Exec.untilAllLocked(exec, Effect.void)
        assert.isTrue(Exec.ticket(exec)?.isDone)
        yield* Exec.fini(exec)
        assert.isTrue(Exec.ticket(exec)?.isFinished)
      }
    })
  )
})

describe("drm_exec semantics", () => {
  it.effect("duplicates without the flag: Already, nothing reserved, tracked once", () =>
    Effect.gen(function* () {
      const bo = new Bo("dup")
      const exec = yield* Exec.init<Bo>()
      const e = yield* Effect.flip(
        Exec.untilAllLocked(exec, Effect.andThen(Exec.prepare(exec, bo, 0), Exec.prepare(exec, bo, 8)))
      )
      assert.strictEqual(e._tag, "Already")
      assert.strictEqual(bo.resv.freeSlots, 0, "with -EALREADY nothing is reserved")
      assert.strictEqual(Exec.lockedObjects(exec).length, 1)
      yield* Exec.fini(exec)
      assert.strictEqual(bo.refs, 0)
    })
  )

  it.effect("prepare: 0 slots only locks; with duplicates ignored a second prepare does not add up", () =>
    Effect.gen(function* () {
      const [bo, other] = [new Bo("p"), new Bo("q")]
      const exec = yield* Exec.init<Bo>({ ignoreDuplicates: true })
      yield* Exec.untilAllLocked(
        exec,
        Effect.gen(function* () {
          yield* Exec.prepare(exec, other, 0)
          yield* Exec.prepare(exec, bo, 1)
          yield* Exec.prepare(exec, bo, 1)
        })
      )
      assert.strictEqual(other.resv.freeSlots, 0, "lock only, nothing reserved")
      assert.isTrue(DmaResv.isHeld(other.resv))
      assert.strictEqual(bo.resv.freeSlots, 5, "reserve(1) twice = one reservation (5 slots after rounding)")
      yield* Exec.fini(exec)
    })
  )

  it.effect("two objects sharing one resv (a VM's private BOs) collide unless duplicates are ignored", () =>
    Effect.gen(function* () {
      const vm = DmaResv.make("vm")
      const [a, b] = [new Bo("a", [], vm), new Bo("b", [], vm)]
      const strict = yield* Exec.init<Bo>()
      const e = yield* Effect.flip(
        Exec.untilAllLocked(strict, Effect.andThen(Exec.lock(strict, a), Exec.lock(strict, b)))
      )
      assert.strictEqual(e._tag, "Already")
      yield* Exec.fini(strict)
      const lax = yield* Exec.init<Bo>({ ignoreDuplicates: true })
      yield* Exec.untilAllLocked(lax, Effect.andThen(Exec.lock(lax, a), Exec.lock(lax, b)))
      assert.deepStrictEqual(Exec.lockedObjects(lax), [a])
      yield* Exec.fini(lax)
      assert.isFalse(DmaResv.isLocked(vm))
      assert.strictEqual(a.refs + b.refs, 0)
    })
  )

  it.effect("a destroyed resv is Invalid: nothing tracked, no reference kept", () =>
    Effect.gen(function* () {
      const [ok, gone] = [new Bo("ok"), new Bo("gone")]
      yield* DmaResv.fini(gone.resv)
      const exec = yield* Exec.init<Bo>()
      const e = yield* Effect.flip(
        Exec.untilAllLocked(exec, Effect.andThen(Exec.lock(exec, ok), Exec.prepare(exec, gone, 1)))
      )
      assert.instanceOf(e, Invalid)
      assert.deepStrictEqual(names(Exec.lockedObjects(exec)), ["ok"])
      assert.strictEqual(gone.refs, 0)
      yield* Exec.fini(exec)
      assert.strictEqual(ok.refs, 0)
    })
  )

  it.effect("bad slot counts are Invalid before anything is locked", () =>
    Effect.gen(function* () {
      const bo = new Bo("bad")
      const exec = yield* Exec.init<Bo>()
      for (const n of [-1, 0.5, Number.NaN, 2 ** 40]) {
        const e = yield* Effect.flip(Exec.untilAllLocked(exec, Exec.prepare(exec, bo, n)))
        assert.instanceOf(e, Invalid)
        assert.isFalse(DmaResv.isLocked(bo.resv))
      }
      const e = yield* Effect.flip(Exec.untilAllLocked(exec, Exec.prepareArray(exec, [bo], -3)))
      assert.instanceOf(e, Invalid)
      yield* Exec.fini(exec)
      assert.strictEqual(bo.refs, 0)
    })
  )

  it.effect("locking outside the loop is a defect; after the loop a strict-mode violation", () =>
    Effect.gen(function* () {
      const bo = new Bo("early")
      const exec = yield* Exec.init<Bo>()
      assert.isTrue(Exit.hasDies(yield* Effect.exit(Exec.lock(exec, bo))))
      yield* Exec.fini(exec)
      yield* Lockdep.withConfig(
        { strict: true },
        Effect.gen(function* () {
          const late = yield* Exec.init<Bo>()
          yield* Exec.untilAllLocked(late, Effect.void)
          const exit = yield* Effect.exit(Exec.lock(late, bo))
          assert.isTrue(Exit.hasDies(exit))
          assert.include(String(Exit.isFailure(exit) ? exit.cause : ""), "lock-after-done")
          yield* Exec.fini(late)
        })
      )
      Lockdep.clearReports()
      assert.isFalse(DmaResv.isLocked(bo.resv))
    })
  )

  it.effect.each([
    { global: true, perExec: undefined },
    { global: false, perExec: true }
  ])("strict mode %o: slots reserved in an exec do not survive its release", ({ global, perExec }) =>
    Lockdep.withConfig(
      { strict: global },
      Effect.gen(function* () {
        const bo = new Bo("slots")
        yield* Effect.scoped(
          Effect.gen(function* () {
            const exec = yield* Exec.make<Bo>(perExec === undefined ? {} : { strict: perExec })
            yield* Exec.untilAllLocked(exec, Exec.prepare(exec, bo, 2))
            assert.isAtLeast(bo.resv.freeSlots, 2)
          })
        )
        assert.strictEqual(bo.resv.freeSlots, 0)
        const held = yield* DmaResv.lock(bo.resv)
        const exit = yield* Effect.exit(DmaResv.addFence(held, DmaFence.make(DmaFence.contextAlloc("s")), "read"))
        assert.isTrue(Exit.hasDies(exit))
        yield* DmaResv.unlock(held)
      })
    )
  )

  it.effect("two execs nested in one task are the nested-ctx report in strict mode", () =>
    Lockdep.withConfig(
      { strict: true },
      Effect.gen(function* () {
        const [x, y] = [new Bo("x"), new Bo("y")]
        const outer = yield* Exec.init<Bo>()
        yield* Exec.untilAllLocked(outer, Exec.lock(outer, x))
        const inner = yield* Exec.init<Bo>()
        const exit = yield* Effect.exit(Exec.untilAllLocked(inner, Exec.lock(inner, y)))
        assert.isTrue(Exit.hasDies(exit))
        assert.include(String(Exit.isFailure(exit) ? exit.cause : ""), "nested-ctx")
        yield* Exec.fini(inner)
        yield* Exec.fini(outer)
        Lockdep.clearReports()
        assert.isFalse(DmaResv.isLocked(x.resv) || DmaResv.isLocked(y.resv))
      })
    )
  )

  it.effect("fini is valid in any state and idempotent; the Scope form releases on failure", () =>
    Effect.gen(function* () {
      const bo = new Bo("f")
      const exec = yield* Exec.init<Bo>()
      yield* Exec.fini(exec)
      yield* Exec.fini(exec)
      const failed = yield* Effect.exit(
        Effect.scoped(
          Effect.gen(function* () {
            const e = yield* Exec.make<Bo>()
            yield* Exec.untilAllLocked(e, Exec.lock(e, bo))
            return yield* Effect.fail("validation failed" as const)
          })
        )
      )
      assert.isTrue(Exit.isFailure(failed))
      assert.isFalse(DmaResv.isLocked(bo.resv))
      assert.strictEqual(bo.refs, 0)
    })
  )

  it.effect("ownership is per task: another fiber cannot fini, unlock or batch-unlock the exec", () =>
    Effect.gen(function* () {
      const [a, b] = [new Bo("a"), new Bo("b")]
      const exec = yield* Exec.init<Bo>()
      const sub = yield* Exec.untilAllLocked(
        exec,
        Effect.gen(function* () {
          yield* Exec.lock(exec, a)
          const sub = Exec.beginSubList(exec)
          yield* Exec.lock(exec, b)
          return sub
        })
      )
      const foreign = [
        Exec.fini(exec),
        Exec.unlock(exec, a),
        Exec.unlockSubList(exec, sub),
        Exec.mergeSubList(exec, sub)
      ]
      for (const op of foreign) {
        const exit = yield* Effect.flatMap(Effect.forkChild(op), Fiber.await)
        assert.isTrue(Exit.hasDies(exit))
      }
      assert.deepStrictEqual(names(Exec.lockedObjects(exec)), ["a", "b"], "nothing was unlocked")
      assert.isTrue(DmaResv.isHeld(a.resv) && DmaResv.isHeld(b.resv))
      assert.isFalse(Exec.ticket(exec)?.isFinished)
      assert.strictEqual(yield* Exec.unlockSubList(exec, sub), 1, "the owner still can")
      yield* Exec.fini(exec)
      assert.strictEqual(a.refs + b.refs, 0)
    })
  )

  it.effect("witnesses from the exec work until fini, then are stale", () =>
    Effect.gen(function* () {
      const bo = new Bo("w")
      const exec = yield* Exec.init<Bo>()
      yield* Exec.untilAllLocked(exec, Exec.prepare(exec, bo, 1))
      const held = Exec.held(exec, bo)
      yield* DmaResv.addFence(held, DmaFence.make(DmaFence.contextAlloc("r")), "read")
      assert.strictEqual(bo.resv.fenceCount, 1)
      yield* Exec.fini(exec)
      assert.isUndefined(Exec.heldOf(exec, bo))
      assert.throws(() => Exec.held(exec, bo))
      assert.isTrue(Exit.hasDies(yield* Effect.exit(DmaResv.assertHeld(held))))
    })
  )

  it.effect("iterates locked objects forward and in reverse; drm_exec_obj is undefined out of range", () =>
    Effect.gen(function* () {
      const bos = ["a", "b", "c"].map((n) => new Bo(n))
      const exec = yield* Exec.init<Bo>()
      yield* Exec.untilAllLocked(exec, Exec.prepareArray(exec, bos, 0))
      assert.deepStrictEqual(names(Exec.lockedObjects(exec)), ["a", "b", "c"])
      assert.deepStrictEqual(names([...Exec.lockedObjectsReverse(exec)]), ["c", "b", "a"])
      assert.strictEqual(Exec.obj(exec, 1), bos[1])
      assert.isUndefined(Exec.obj(exec, 3))
      assert.isUndefined(Exec.obj(exec, -1))
      yield* Exec.fini(exec)
    })
  )

  it.effect("fini unlocks in reverse lock order and balances every reference", () =>
    Effect.gen(function* () {
      const log: Array<string> = []
      const bos = ["a", "b", "c"].map((n) => new Bo(n, log))
      yield* Effect.scoped(
        Effect.gen(function* () {
          const exec = yield* Exec.make<Bo>()
          yield* Exec.untilAllLocked(exec, Exec.prepareArray(exec, bos, 1))
          assert.deepStrictEqual(
            bos.map((b) => b.refs),
            [1, 1, 1]
          )
        })
      )
      assert.deepStrictEqual(log, ["put c", "put b", "put a"])
      assert.isTrue(bos.every((b) => b.refs === 0 && !DmaResv.isLocked(b.resv)))
    })
  )
})
