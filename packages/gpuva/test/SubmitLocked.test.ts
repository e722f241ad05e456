import { BindQueue, GpuVa, GpuVm, VmBind, VmBo } from "@drmkit/gpuva"
import { DmaFence, DmaResv, Exec, Lockdep } from "@drmkit/resv-locking"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit } from "effect"
import { check, cpuVm, GiB, MiB, object, tree } from "./helpers.ts"

const pick = <A>(xs: ReadonlyArray<A>, i: number): A => xs[i % xs.length] as A

const bookkeep = (resv: DmaResv.DmaResv) => Effect.orDie(DmaResv.getFences(resv, "bookkeep"))

describe("BindQueue.submitLocked (bind inside the caller's exec transaction)", () => {
  it.effect("binds in the caller's transaction, publishes to the VM resv, extobjs and mapped objects", () =>
    Effect.gen(function* () {
      const { vm } = cpuVm()
      const q = yield* BindQueue.make(vm)
      const a = object("a", 2n * MiB)
      const p = object("p", 2n * MiB, vm.resv)
      const job = yield* Effect.scoped(
        Effect.gen(function* () {
          const exec = yield* GpuVm.execLock(vm, 0, (e) => Exec.prepareArray(e, [a.resv], 0))
          const job = yield* BindQueue.submitLocked(
            q,
            [VmBind.map(GiB, 2n * MiB, a), VmBind.map(2n * GiB, MiB, p)],
            exec
          )
          assert.isTrue(DmaResv.isHeld(vm.resv) && DmaResv.isHeld(a.resv), "the caller's locks are still held")
          assert.include(yield* bookkeep(vm.resv), job!.fence)
          assert.include(yield* bookkeep(a.resv), job!.fence)
          return job!
        })
      )
      yield* BindQueue.flush(q)
      assert.isUndefined(job.fence.error)
      assert.deepStrictEqual(yield* check(vm), [])
      assert.isTrue(vm.extobjs.has(VmBo.peek(vm, a)!))
    })
  )

  it.effect("a transaction missing an object the ops touch is a LockNotHeld defect; nothing changes", () =>
    Effect.gen(function* () {
      const { vm } = cpuVm()
      const q = yield* BindQueue.make(vm)
      const a = object("a", 2n * MiB)
      const exit = yield* Effect.exit(
        Effect.scoped(
          Effect.gen(function* () {
            const exec = yield* GpuVm.execLock(vm, 0) // VM resv + extobjs, but not a
            return yield* BindQueue.submitLocked(q, [VmBind.map(GiB, 2n * MiB, a)], exec)
          })
        )
      )
      assert.isTrue(Exit.hasDies(exit))
      assert.deepStrictEqual(tree(vm), [])
      assert.strictEqual(q.submitted, 0)
      const noVm = yield* Effect.exit(
        Effect.scoped(
          Effect.gen(function* () {
            const exec = yield* Exec.make<DmaResv.DmaResv>()
            yield* Exec.untilAllLocked(exec, Exec.prepare(exec, a.resv, 0))
            return yield* BindQueue.submitLocked(q, [VmBind.map(GiB, 2n * MiB, a)], exec)
          })
        )
      )
      assert.isTrue(Exit.hasDies(noVm), "the VM resv must be in the transaction")
      assert.deepStrictEqual(tree(vm), [])
    })
  )

  it.effect("lock → validate evicted → rebind invalidated → job, in ONE transaction", () =>
    Effect.gen(function* () {
      const moved = object("moved-to", 4n * MiB)
      const move = DmaFence.make(DmaFence.contextAlloc("ttm-move"))
      let frames: VmBind.Frames = object("vram", 4n * MiB).frames
      const m = {
        name: "m",
        size: 4n * MiB,
        resv: DmaResv.make("m"),
        get frames() {
          return frames
        }
      } satisfies VmBind.BindObject
      const s = cpuVm()
      let validates = 0
      const vm = GpuVm.make<"validate-failed">({
        space: s.vm.space,
        pageTables: s.vm.pageTables!,
        ops: {
          vmBoValidate: (_b, held) =>
            Effect.gen(function* () {
              validates++
              frames = moved.frames // "ttm move" back, still copying
              yield* Effect.orDie(DmaResv.reserveFences(held, 1))
              yield* Effect.orDie(DmaResv.addFence(held, move, "kernel"))
            })
        }
      })
      const q = yield* BindQueue.make(vm)
      const other = object("other", 2n * MiB)
      yield* BindQueue.submit(q, [VmBind.map(GiB, 2n * MiB, m), VmBind.map(2n * GiB, 2n * MiB, m, 2n * MiB)])
      yield* BindQueue.flush(q)
      // move_notify: evict + zap, with only m's resv held
      yield* Effect.scoped(
        Effect.gen(function* () {
          const exec = yield* Exec.make<DmaResv.DmaResv>()
          yield* Exec.untilAllLocked(exec, Exec.prepare(exec, m.resv, 1))
          VmBo.evictObject(m, true, Exec.held(exec, m.resv))
          yield* BindQueue.invalidate(q, Exec.held(exec, m.resv), m)
        })
      )
      yield* BindQueue.flush(q)
      assert.strictEqual(vm.evicted.size, 1)
      // exec: one transaction
      const job = yield* Effect.scoped(
        Effect.gen(function* () {
          const exec = yield* GpuVm.execLock(vm, 0, (e) => Exec.prepareArray(e, [other.resv], 0))
          const job = yield* BindQueue.submitLocked(q, [VmBind.map(3n * GiB, 2n * MiB, other)], exec, {
            validate: true,
            rebind: true
          })
          assert.strictEqual(validates, 1)
          assert.strictEqual(vm.evicted.size, 0)
          return job!
        })
      )
      assert.include(job.deps, move, "the rebind waits for the move (KERNEL fence)")
      assert.strictEqual(job.plan.descriptors.length > 0, true)
      for (let i = 0; i < 10; i++) yield* Effect.yieldNow
      assert.isFalse(job.fence.isSignaled)
      move.signal()
      yield* BindQueue.flush(q)
      for (const va of vm.space) assert.strictEqual(va.flags & GpuVa.Flags.Invalidated, 0)
      assert.deepStrictEqual(yield* check(vm), [], "rebound to the new frames, other mapped")
      // nothing to do: no job
      const none = yield* Effect.scoped(
        Effect.flatMap(GpuVm.execLock(vm, 0), (exec) => BindQueue.submitLocked(q, [], exec, { rebind: true }))
      )
      assert.isUndefined(none)
    })
  )

  it.effect("a bad op fails with Invalid before the validate runs", () =>
    Effect.gen(function* () {
      const s = cpuVm()
      let validates = 0
      const vm = GpuVm.make({
        space: s.vm.space,
        pageTables: s.vm.pageTables!,
        ops: { vmBoValidate: () => Effect.sync(() => void validates++) }
      })
      const q = yield* BindQueue.make(vm)
      const r = yield* Effect.flip(
        Effect.scoped(
          Effect.flatMap(GpuVm.execLock(vm, 0), (exec) =>
            BindQueue.submitLocked(q, [VmBind.unmap(GiB + 1n, 4096n)], exec, { validate: true })
          )
        )
      )
      assert.strictEqual(r._tag, "Invalid")
      assert.strictEqual(validates, 0)
      const empty = yield* Effect.flip(
        Effect.scoped(Effect.flatMap(GpuVm.execLock(vm, 0), (exec) => BindQueue.submitLocked(q, [], exec)))
      )
      assert.strictEqual(empty._tag, "Invalid", "an empty array needs rebind")
    })
  )
  it.effect(
    "submit, submitLocked (validate + rebind) and move_notify invalidations race: no deadlock, consistent",
    () =>
      Lockdep.withConfig(
        { injection: true, strict: true, onReport: "record" },
        Effect.gen(function* () {
          Lockdep.clearReports()
          const { vm } = cpuVm("race")
          const q = yield* BindQueue.make(vm)
          const shared = Array.from({ length: 4 }, (_, i) => object(`s${i}`, 4n * MiB))
          let zaps = 0
          const slot = (i: number) => GiB + BigInt(i % 16) * 8n * MiB
          const submitter = (seed: number) =>
            Effect.gen(function* () {
              for (let i = 0; i < 12; i++) {
                const o = pick(shared, seed + i)
                yield* BindQueue.submit(q, [
                  VmBind.map(slot(seed * 7 + i), 2n * MiB, o),
                  VmBind.unmap(slot(i * 3), MiB)
                ])
                yield* Effect.yieldNow
              }
            })
          const execer = (seed: number) =>
            Effect.gen(function* () {
              for (let i = 0; i < 12; i++) {
                const o = pick(shared, seed * 3 + i)
                yield* Effect.scoped(
                  Effect.gen(function* () {
                    const exec = yield* GpuVm.execLock(vm, 0, (e) => Exec.prepareArray(e, [o.resv], 0), {
                      interruptible: true
                    })
                    yield* Effect.yieldNow
                    yield* BindQueue.submitLocked(q, [VmBind.map(slot(seed * 5 + i) + 4n * MiB, 2n * MiB, o)], exec, {
                      validate: true,
                      rebind: true
                    })
                  })
                )
              }
            })
          const mover = Effect.gen(function* () {
            for (let i = 0; i < 24; i++) {
              const o = pick(shared, i)
              yield* Effect.scoped(
                Effect.gen(function* () {
                  const exec = yield* Exec.make<DmaResv.DmaResv>()
                  yield* Exec.untilAllLocked(exec, Exec.prepare(exec, o.resv, 1))
                  VmBo.evictObject(o, true, Exec.held(exec, o.resv))
                  if ((yield* BindQueue.invalidate(q, Exec.held(exec, o.resv), o)) !== undefined) zaps++
                })
              )
              yield* Effect.yieldNow
            }
          })
          yield* Effect.all([submitter(1), submitter(2), execer(1), execer(2), mover], {
            concurrency: "unbounded",
            discard: true
          })
          yield* BindQueue.flush(q)
          assert.isAbove(zaps, 3, "move_notify really zapped mappings")
          assert.isAbove(q.submitted, 40)
          assert.deepStrictEqual(yield* check(vm), [], "invalidated VAs fault, the rest map their objects")
          yield* Effect.scoped(
            Effect.flatMap(GpuVm.execLock(vm, 0), (exec) =>
              BindQueue.submitLocked(q, [], exec, { validate: true, rebind: true })
            )
          )
          yield* BindQueue.flush(q)
          assert.strictEqual(vm.evicted.size, 0)
          for (const va of vm.space) assert.strictEqual(va.flags & GpuVa.Flags.Invalidated, 0)
          assert.deepStrictEqual(yield* check(vm), [])
          for (const r of [...shared.map((o) => o.resv), vm.resv]) assert.isFalse(DmaResv.isLocked(r))
          yield* BindQueue.submit(q, [VmBind.unmap(0n, 1n << 40n)])
          yield* BindQueue.flush(q)
          assert.deepStrictEqual(GpuVm.leftovers(vm), [])
          assert.deepStrictEqual(Lockdep.reports(), [])
        })
      )
  )
})
