import { CurrentTraceSink, collectingSink } from "@drmkit/core"
import { BindQueue, GpuVm, VmBind, VmBo } from "@drmkit/gpuva"
import { DmaResv, Exec, Lockdep } from "@drmkit/resv-locking"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import { check, cpuVm, GiB, MiB, object } from "./helpers.ts"

/** Deterministic PRNG (mulberry32). */
const rng = (seed: number) => {
  let a = seed >>> 0
  return (n: number): number => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n)
  }
}

describe("binds touching external objects from several fibers", () => {
  it.effect("deadlock injection on: no deadlock, every bind lands, nothing leaked", () =>
    Lockdep.withConfig(
      { injection: true, strict: true, onReport: "record" },
      Effect.gen(function* () {
        Lockdep.clearReports()
        const shared = Array.from({ length: 5 }, (_, i) => object(`shared${i}`, 8n * MiB))
        const vms = Array.from({ length: 3 }, (_, i) => cpuVm(`vm${i}`))
        const queues = yield* Effect.forEach(vms, (s) => BindQueue.make(s.vm))
        const binder = (v: number, seed: number) =>
          Effect.gen(function* () {
            const r = rng(seed)
            const q = queues[v]!
            for (let i = 0; i < 25; i++) {
              const slot = BigInt(r(16))
              const ops: Array<VmBind.BindOp> = [
                VmBind.map(GiB + slot * 8n * MiB, 2n * MiB, shared[r(5)]!, BigInt(r(4)) * MiB),
                VmBind.map(GiB + BigInt(r(16)) * 8n * MiB + 4n * MiB, 1n * MiB, shared[r(5)]!),
                VmBind.unmap(GiB + BigInt(r(16)) * 8n * MiB, BigInt(1 + r(8)) * 512n * 1024n)
              ]
              if (r(6) === 0) ops.push(VmBind.unmapAll(shared[r(5)]!))
              yield* BindQueue.submit(q, ops)
              if (r(3) === 0) yield* Effect.yieldNow
            }
          })
        // an "evictor" taking the shared objects in reverse order and holding them across a yield
        const evictor = Effect.gen(function* () {
          for (let i = 0; i < 20; i++) {
            yield* Effect.scoped(
              Effect.gen(function* () {
                const exec = yield* Exec.make<DmaResv.DmaResv>({ ignoreDuplicates: true })
                yield* Exec.untilAllLocked(
                  exec,
                  Exec.prepareArray(
                    exec,
                    [...shared].reverse().map((o) => o.resv),
                    0
                  )
                )
                yield* Effect.yieldNow
                for (const o of shared) VmBo.evictObject(o, i % 2 === 0, Exec.held(exec, o.resv))
              })
            )
            yield* Effect.yieldNow
          }
        })
        const sink = collectingSink()
        yield* Effect.all([binder(0, 1), binder(1, 2), binder(2, 3), binder(0, 4), evictor], {
          concurrency: "unbounded",
          discard: true
        }).pipe(Effect.provideService(CurrentTraceSink, sink))
        const backoffs = sink.events.filter((e) => e.name === "drm_exec_backoff").length
        assert.isAbove(backoffs, 10, "transactions really backed off (injected and real -EDEADLK)")
        for (const q of queues) yield* BindQueue.flush(q)
        for (const s of vms) {
          assert.deepStrictEqual(yield* check(s.vm), [], s.vm.name)
          assert.deepStrictEqual(s.vm.space.check(), [])
          for (const o of shared) {
            const b = VmBo.peek(s.vm, o)
            const mapped = s.vm.space.vasOf(o).length
            assert.strictEqual(b?.vas.size ?? 0, mapped, `${s.vm.name}/${o.name}: vm_bo lists every VA`)
            assert.strictEqual(b?.refs ?? 0, mapped, `${s.vm.name}/${o.name}: one reference per VA`)
            assert.strictEqual(s.vm.extobjs.has(b as VmBo.VmBo), mapped > 0)
          }
          // validate (evicted ones come back) in one VM-wide transaction
          yield* Effect.scoped(Effect.flatMap(GpuVm.execLock(s.vm, 0), (exec) => GpuVm.validate(s.vm, exec)))
          assert.strictEqual(s.vm.evicted.size, 0)
        }
        for (const r of [...shared.map((o) => o.resv), ...vms.map((s) => s.vm.resv)]) {
          assert.isFalse(DmaResv.isLocked(r), `${r.name} unlocked`)
        }
        // tear everything down: nothing is left behind
        for (const [i, s] of vms.entries()) {
          yield* BindQueue.submit(queues[i]!, [VmBind.unmap(0n, 1n << 40n)])
          yield* BindQueue.flush(queues[i]!)
          assert.deepStrictEqual(GpuVm.leftovers(s.vm), [])
          assert.strictEqual(s.vm.pageTables?.shadow.tablesInUse, 1)
        }
        for (const o of shared) assert.deepStrictEqual(VmBo.ofObject(o), [])
        assert.deepStrictEqual(Lockdep.reports(), [])
      })
    )
  )

  it.effect("a bind interrupted while waiting for an object's lock changes nothing and holds nothing", () =>
    Effect.gen(function* () {
      const s = cpuVm("intr")
      const q = yield* BindQueue.make(s.vm)
      const ext = object("ext", 2n * MiB)
      const held = yield* DmaResv.lock(ext.resv)
      const waiter = yield* Effect.forkChild(BindQueue.submit(q, [VmBind.map(GiB, 2n * MiB, ext)]))
      for (let i = 0; i < 20; i++) yield* Effect.yieldNow
      assert.isUndefined(waiter.pollUnsafe(), "blocked on ext's resv")
      yield* Fiber.interrupt(waiter)
      assert.strictEqual(s.vm.space.count, 0)
      assert.isFalse(DmaResv.isLocked(s.vm.resv), "the VM resv was released")
      assert.strictEqual(s.vm.resv.fenceCount, 0)
      yield* DmaResv.unlock(held)
      yield* BindQueue.submit(q, [VmBind.map(GiB, 2n * MiB, ext)])
      yield* BindQueue.flush(q)
      assert.deepStrictEqual(yield* check(s.vm), [])
    })
  )
})
