import { BindQueue, GpuVa, GpuVm, VmBind, VmBo } from "@drmkit/gpuva"
import { DmaFence, DmaResv, Exec } from "@drmkit/resv-locking"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit } from "effect"
import { bindAndCheck, check, cpuVm, GiB, KiB, MiB, object, scattered } from "./helpers.ts"

/** Runs `f` with only `resv` locked (the move_notify situation: TTM holds the BO's resv). */
const withResv = <A, E>(resv: DmaResv.DmaResv, f: (held: ReturnType<typeof Exec.held>) => Effect.Effect<A, E>) =>
  Effect.scoped(
    Effect.gen(function* () {
      const exec = yield* Exec.make<DmaResv.DmaResv>()
      yield* Exec.untilAllLocked(exec, Exec.prepare(exec, resv, 1))
      return yield* f(Exec.held(exec, resv))
    })
  )

const translate = (vm: GpuVm.GpuVm<unknown>, addrs: ReadonlyArray<bigint>) =>
  Effect.orDie(vm.pageTables!.translate(addrs))

const flagged = (vm: GpuVm.GpuVm<unknown>) =>
  [...vm.space].filter((va) => (va.flags & GpuVa.Flags.Invalidated) !== 0).map((va) => va.addr)

describe("BindQueue.invalidate (xe_vm_invalidate_vma from move_notify)", () => {
  it.effect("zaps every mapping of the object and nothing else; fence on the object's resv (BOOKKEEP)", () =>
    Effect.gen(function* () {
      const { vm } = cpuVm()
      const q = yield* BindQueue.make(vm)
      const a = object("a", 4n * MiB)
      const b = scattered("b", 2n * MiB)
      yield* bindAndCheck(q, [
        VmBind.map(GiB, 4n * MiB, a),
        VmBind.map(2n * GiB, 2n * MiB, a, 2n * MiB),
        VmBind.map(3n * GiB, 2n * MiB, b),
        VmBind.unmap(GiB + MiB, 4n * KiB) // a split mapping: two VAs of a
      ])
      const before = yield* translate(vm, [3n * GiB, 3n * GiB + MiB])
      const job = yield* withResv(a.resv, (held) => BindQueue.invalidate(q, held, a))
      assert.isDefined(job)
      // published before it runs (signalled fences are pruned from the resv)
      assert.include(yield* Effect.orDie(DmaResv.getFences(a.resv, "bookkeep")), job!.fence)
      assert.notInclude(yield* Effect.orDie(DmaResv.getFences(vm.resv, "bookkeep")), job!.fence, "VM resv not held")
      yield* BindQueue.flush(q)
      assert.isUndefined(job!.fence.error)
      assert.deepStrictEqual(flagged(vm), [GiB, GiB + MiB + 4n * KiB, 2n * GiB])
      assert.deepStrictEqual(yield* check(vm), [], "zapped pages fault, b intact, holes fault")
      const zapped = yield* translate(vm, [GiB, GiB + 3n * MiB, 2n * GiB + 4n * KiB])
      assert.deepStrictEqual(zapped, [undefined, undefined, undefined])
      assert.deepStrictEqual(yield* translate(vm, [3n * GiB, 3n * GiB + MiB]), before)
      // nothing left to invalidate: no job
      assert.isUndefined(yield* withResv(a.resv, (held) => BindQueue.invalidate(q, held, a)))
    })
  )

  it.effect("a private object's zap is published to the VM resv; a held VM resv gets it too", () =>
    Effect.gen(function* () {
      const { vm } = cpuVm()
      const q = yield* BindQueue.make(vm)
      const p = object("p", 2n * MiB, vm.resv)
      const e = object("e", 2n * MiB)
      yield* bindAndCheck(q, [VmBind.map(GiB, 2n * MiB, p), VmBind.map(2n * GiB, 2n * MiB, e)])
      const jp = yield* withResv(vm.resv, (held) => BindQueue.invalidate(q, held, p))
      assert.include(yield* Effect.orDie(DmaResv.getFences(vm.resv, "bookkeep")), jp!.fence)
      const je = yield* Effect.scoped(
        Effect.gen(function* () {
          const exec = yield* GpuVm.execLock(vm, 1)
          return yield* BindQueue.invalidate(q, Exec.held(exec, e.resv), e)
        })
      )
      // same context as jp's: it replaces jp on the VM resv (one fence per context)
      assert.include(yield* Effect.orDie(DmaResv.getFences(vm.resv, "bookkeep")), je!.fence)
      assert.include(yield* Effect.orDie(DmaResv.getFences(e.resv, "bookkeep")), je!.fence)
      yield* BindQueue.flush(q)
      assert.deepStrictEqual(yield* check(vm), [])
    })
  )

  it.effect("is ordered behind earlier binds on the queue, and a later rebind behind it", () =>
    Effect.gen(function* () {
      const { vm } = cpuVm()
      const q = yield* BindQueue.make(vm)
      const a = object("a", 2n * MiB)
      const gate = DmaFence.make(DmaFence.contextAlloc("gate"))
      // the bind is held back by an in-fence: its PTEs are written only after the gate
      const bind = yield* BindQueue.submit(q, [VmBind.map(GiB, 2n * MiB, a)], { inFences: [gate] })
      const gate2 = DmaFence.make(DmaFence.contextAlloc("gate2"))
      const zap = yield* withResv(a.resv, (held) => BindQueue.invalidate(q, held, a, { inFences: [gate2] }))
      gate.signal()
      yield* Effect.orDie(DmaFence.wait(bind.fence))
      for (let i = 0; i < 10; i++) yield* Effect.yieldNow
      assert.isFalse(zap!.fence.isSignaled, "the zap waits for its in-fence")
      assert.isNotEmpty(yield* check(vm), "flagged, but the zap has not run yet: the PTEs still map it")
      // a rebind queued now runs after the zap: the end state is mapped again
      const rebind = yield* BindQueue.submit(q, [VmBind.prefetch(GiB, 2n * MiB)])
      assert.isAbove(rebind.plan.descriptors.length, 0)
      gate2.signal()
      yield* BindQueue.flush(q)
      assert.isTrue(zap!.fence.isSignaled)
      assert.deepStrictEqual(flagged(vm), [])
      assert.deepStrictEqual(yield* check(vm), [])
      assert.isDefined((yield* translate(vm, [GiB]))[0])
    })
  )

  it.effect("a zap on another queue is ordered by range fences", () =>
    Effect.gen(function* () {
      const { vm } = cpuVm()
      const q1 = yield* BindQueue.make(vm, "q1")
      const q2 = yield* BindQueue.make(vm, "q2")
      const a = object("a", 2n * MiB)
      const gate = DmaFence.make(DmaFence.contextAlloc("gate"))
      const bind = yield* BindQueue.submit(q1, [VmBind.map(GiB, 2n * MiB, a)], { inFences: [gate] })
      const zap = yield* withResv(a.resv, (held) => BindQueue.invalidate(q2, held, a))
      assert.include(zap!.deps, bind.fence)
      gate.signal()
      yield* BindQueue.flush(q1)
      yield* BindQueue.flush(q2)
      assert.deepStrictEqual(yield* check(vm), [])
      assert.isUndefined((yield* translate(vm, [GiB]))[0])
    })
  )

  it.effect("the witness must be the object's resv, held by this task (a defect otherwise)", () =>
    Effect.gen(function* () {
      const { vm } = cpuVm()
      const q = yield* BindQueue.make(vm)
      const a = object("a", 2n * MiB)
      const b = object("b", 2n * MiB)
      yield* bindAndCheck(q, [VmBind.map(GiB, 2n * MiB, a)])
      const wrong = yield* Effect.exit(withResv(b.resv, (held) => BindQueue.invalidate(q, held, a)))
      assert.isTrue(Exit.hasDies(wrong))
      const stale = yield* withResv(a.resv, (held) => Effect.succeed(held))
      const unlocked = yield* Effect.exit(BindQueue.invalidate(q, stale, a))
      assert.isTrue(Exit.hasDies(unlocked))
      assert.deepStrictEqual(flagged(vm), [])
      assert.strictEqual(VmBo.peek(vm, a)?.vas.size, 1)
    })
  )

  it.effect("NoMemory (the job allocation) changes nothing", () =>
    Effect.gen(function* () {
      const { vm, allocator } = cpuVm()
      const q = yield* BindQueue.make(vm)
      const a = object("a", 2n * MiB)
      yield* bindAndCheck(q, [VmBind.map(GiB, 2n * MiB, a)])
      allocator.failAfter = 0
      const r = yield* Effect.flip(withResv(a.resv, (held) => BindQueue.invalidate(q, held, a)))
      assert.strictEqual(r._tag, "NoMemory")
      assert.deepStrictEqual(flagged(vm), [])
      allocator.failAfter = undefined
      assert.strictEqual(q.submitted, 1)
      assert.deepStrictEqual(yield* check(vm), [])
    })
  )
  it.effect("a map over a zapped VA with the same translation rewrites its PTEs (no keep of zapped entries)", () =>
    Effect.gen(function* () {
      const { vm } = cpuVm()
      const q = yield* BindQueue.make(vm)
      const a = object("a", 4n * MiB)
      yield* bindAndCheck(q, [VmBind.map(GiB, 4n * MiB, a)])
      yield* withResv(a.resv, (held) => BindQueue.invalidate(q, held, a))
      yield* BindQueue.flush(q)
      // identical re-map of the middle (keep by translation): the new VA must be mapped, the pieces stay zapped
      yield* bindAndCheck(q, [VmBind.map(GiB + MiB, 2n * MiB, a, MiB)])
      assert.deepStrictEqual(flagged(vm), [GiB, GiB + 3n * MiB])
      const got = yield* translate(vm, [GiB, GiB + MiB, GiB + 3n * MiB - 4096n, GiB + 3n * MiB])
      assert.isUndefined(got[0])
      assert.isDefined(got[1])
      assert.isDefined(got[2])
      assert.isUndefined(got[3])
      // identical re-map of the whole object
      yield* bindAndCheck(q, [VmBind.map(GiB, 4n * MiB, a)])
      assert.deepStrictEqual(flagged(vm), [])
    })
  )
})
