import { Allocator, BindQueue, GpuVm, PageTables, VmBind, VmBo } from "@drmkit/gpuva"
import { DmaFence } from "@drmkit/resv-locking"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit } from "effect"
import { bindAndCheck, check, cpuVm, GiB, KiB, MiB, object, scattered, tree, wrapRun } from "./helpers.ts"

describe("a failed bind changes nothing", () => {
  const snapshot = (s: ReturnType<typeof cpuVm>, objs: ReadonlyArray<VmBind.BindObject>) => ({
    tree: tree(s.vm),
    memory: Array.from(s.cpu.memory.subarray(0, 1024 * 64)).join(","),
    tables: s.vm.pageTables!.shadow.tablesInUse,
    extobjs: [...s.vm.extobjs].map((b) => b.obj.name),
    rangeFences: s.vm.rangeFences.size,
    evicted: s.vm.evicted.size,
    vmBos: objs.map((o) => [VmBo.peek(s.vm, o)?.refs, VmBo.peek(s.vm, o)?.vas.size]),
    fences: [s.vm.resv, ...objs.map((o) => o.resv)].map((r) => r.fenceCount)
  })

  it.effect("a bad op anywhere in the array → Invalid naming it, state unchanged", () =>
    Effect.gen(function* () {
      const s = cpuVm()
      const q = yield* BindQueue.make(s.vm)
      const a = object("a", 4n * MiB)
      yield* bindAndCheck(q, [VmBind.map(GiB, 4n * MiB, a)])
      const before = snapshot(s, [a])
      const bad: Array<ReadonlyArray<VmBind.BindOp>> = [
        [VmBind.unmap(GiB, 4096n), VmBind.map(GiB + 3n, 4096n, a)],
        [VmBind.unmap(GiB, 4096n), VmBind.unmap(GiB, 0n)],
        [VmBind.map(2n * GiB, 8n * MiB, a)],
        [VmBind.map(2n * GiB, 4096n, a, 4n * MiB)],
        [VmBind.map(2n * GiB, 4096n, a, 0n, { pteFlags: 0x1 })],
        [VmBind.unmap(1n << 40n, 4096n)],
        [VmBind.unmapAll({ name: "no-resv", size: 4096n } as unknown as VmBind.BindObject)],
        [VmBind.map(2n * GiB, 4096n, { name: "no-frames", size: 4096n, resv: a.resv } as unknown as VmBind.BindObject)],
        []
      ]
      for (const ops of bad) {
        const exit = yield* Effect.exit(BindQueue.submit(q, ops))
        assert.isTrue(Exit.isFailure(exit))
        assert.strictEqual(
          Exit.isFailure(exit) && exit.cause.reasons[0]?._tag === "Fail"
            ? (exit.cause.reasons[0].error as { _tag: string })._tag
            : "",
          "Invalid"
        )
        assert.deepStrictEqual(snapshot(s, [a]), before)
      }
      const e = yield* Effect.flip(BindQueue.submit(q, [VmBind.unmap(GiB, 4096n), VmBind.unmap(GiB, 5n)]))
      assert.strictEqual(e._tag, "Invalid")
      assert.include(e._tag === "Invalid" ? e.what : "", "ops[1]")
    })
  )

  it.effect("NoMemory at every allocation point of a complex array unwinds completely", () =>
    Effect.gen(function* () {
      const s = cpuVm()
      const q = yield* BindQueue.make(s.vm)
      const a = object("a", 8n * MiB)
      const b = object("b", 8n * MiB)
      const c = object("c", 8n * MiB, s.vm.resv)
      yield* bindAndCheck(q, [VmBind.map(GiB, 8n * MiB, a), VmBind.mapNull(2n * GiB, 64n * MiB)])
      const ops = [
        VmBind.map(GiB + 1n * MiB, 1n * MiB, b),
        VmBind.unmap(GiB + 6n * MiB, 4096n),
        VmBind.map(2n * GiB + 4n * MiB, 2n * MiB, c),
        VmBind.unmapAll(a),
        VmBind.map(GiB, 8n * MiB, a, 0n)
      ]
      const before = snapshot(s, [a, b, c])
      let failures = 0
      for (let k = 0; ; k++) {
        s.allocator.failAfter = k
        const exit = yield* Effect.exit(BindQueue.submit(q, ops))
        s.allocator.failAfter = undefined
        if (Exit.isSuccess(exit)) break
        failures++
        const e = yield* Effect.flip(Effect.suspend(() => exit))
        assert.strictEqual(e._tag, "NoMemory")
        assert.deepStrictEqual(snapshot(s, [a, b, c]), before, `failure injected after ${k} allocations`)
      }
      assert.isAtLeast(failures, 8)
      yield* BindQueue.flush(q)
      assert.deepStrictEqual(yield* check(s.vm), [])
    })
  )

  it.effect("a full page-table arena → NoMemory, state unchanged", () =>
    Effect.gen(function* () {
      const s = cpuVm("small", { tables: 8 })
      const q = yield* BindQueue.make(s.vm)
      const a = scattered("a", 4n * MiB)
      yield* bindAndCheck(q, [VmBind.map(GiB, 1n * MiB, a)])
      const before = snapshot(s, [a])
      const e = yield* Effect.flip(
        BindQueue.submit(q, [VmBind.map(2n * GiB, 4n * MiB, a), VmBind.map(8n * GiB, 4n * MiB, a)])
      )
      assert.strictEqual(e._tag, "NoMemory")
      assert.deepStrictEqual(snapshot(s, [a]), before)
    })
  )
})

describe("a failed page-table job", () => {
  const failures = [
    ["an executor error", Effect.fail(new Error("GPU hang"))],
    ["a defect in the job (no hang: the queue keeps cancelling)", Effect.die(new Error("GPU hang"))]
  ] as const
  it.effect.each(failures)("%s signals its fence with the error and kills the VM (no further binds)", ([, failure]) =>
    Effect.gen(function* () {
      const s = cpuVm()
      const runs: Array<number> = []
      const flaky = wrapRun(s.vm.pageTables!.executor, (p, n) =>
        Effect.suspend(() => {
          runs.push(n)
          return n === 2 ? failure : p.run
        })
      )
      const vm = GpuVm.make({
        space: s.vm.space,
        pageTables: PageTables.make({ tables: 64, executor: flaky })
      })
      const q = yield* BindQueue.make(vm)
      const a = object("a", 2n * MiB)
      const gate = DmaFence.make(DmaFence.contextAlloc("gate"))
      const ok = yield* BindQueue.submit(q, [VmBind.map(GiB, 2n * MiB, a)])
      const bad = yield* BindQueue.submit(q, [VmBind.unmap(GiB, 4n * KiB)], { inFences: [gate] })
      const behind = yield* BindQueue.submit(q, [VmBind.unmap(GiB + 64n * KiB, 4n * KiB)])
      gate.signal()
      yield* BindQueue.flush(q)
      assert.isUndefined(ok.fence.error)
      assert.include(bad.fence.error?.message, "GPU hang")
      assert.include(behind.fence.error?.message, "GPU hang", "a job queued behind the failure is cancelled")
      assert.strictEqual(runs.length, 2, "the cancelled job never reached the executor")
      assert.strictEqual(q.completed, 3)
      const e = yield* Effect.flip(BindQueue.submit(q, [VmBind.unmap(GiB, 4n * KiB)]))
      assert.strictEqual(e._tag, "Invalid")
      assert.include(e.message, "ECANCELED")
    })
  )
})

describe("a failed page-table staging", () => {
  it.effect("fails the bind with NoMemory, unwinds tree / vm_bos / fences and kills the VM", () =>
    Effect.gen(function* () {
      const s = cpuVm()
      const real = s.vm.pageTables!.executor
      let n = 0
      const lost: PageTables.Executor = {
        ...real,
        prepare: (plan) => (++n === 2 ? Effect.fail(new Error("device lost")) : real.prepare(plan))
      }
      const vm = GpuVm.make({ space: s.vm.space, pageTables: PageTables.make({ tables: 64, executor: lost }) })
      const q = yield* BindQueue.make(vm)
      const a = object("a", 2n * MiB)
      const b = object("b", 2n * MiB)
      yield* BindQueue.submit(q, [VmBind.map(GiB, 2n * MiB, a)])
      yield* BindQueue.flush(q)
      const before = { tree: tree(vm), refs: VmBo.peek(vm, a)?.refs, fences: [vm.resv.fenceCount, a.resv.fenceCount] }
      const e = yield* Effect.flip(
        BindQueue.submit(q, [VmBind.unmap(GiB, 4n * KiB), VmBind.map(2n * GiB, 2n * MiB, b)])
      )
      assert.strictEqual(e._tag, "NoMemory")
      assert.include(e.message, "device lost")
      assert.deepStrictEqual(
        { tree: tree(vm), refs: VmBo.peek(vm, a)?.refs, fences: [vm.resv.fenceCount, a.resv.fenceCount] },
        before
      )
      assert.isUndefined(VmBo.peek(vm, b))
      assert.deepStrictEqual(
        [...vm.extobjs].map((x) => x.obj.name),
        ["a"]
      )
      assert.isDefined(vm.killed)
      const again = yield* Effect.flip(BindQueue.submit(q, [VmBind.unmap(GiB, 4n * KiB)]))
      assert.include(again.message, "ECANCELED")
    })
  )
})

describe("runJob allocates nothing", () => {
  it.effect("every allocation inside a signalling section throws; all jobs still complete", () =>
    Effect.gen(function* () {
      const s = cpuVm()
      s.allocator.forbidInSignalling = true
      const q = yield* BindQueue.make(s.vm)
      const a = object("a", 8n * MiB)
      const b = scattered("b", 2n * MiB)
      const shapes: Array<ReadonlyArray<VmBind.BindOp>> = [
        [VmBind.map(GiB, 8n * MiB, a), VmBind.mapNull(4n * GiB, 2n * GiB)],
        [VmBind.map(GiB + 1n * MiB, 2n * MiB, b), VmBind.map(4n * GiB + 1n * GiB, 2n * MiB, a)],
        [VmBind.unmap(GiB + 2n * MiB, 8n * KiB), VmBind.prefetch(GiB, 8n * MiB)],
        [VmBind.unmapAll(b), VmBind.unmap(4n * GiB, 2n * GiB)],
        [VmBind.unmap(GiB, 8n * MiB)]
      ]
      const jobs = []
      for (const ops of shapes) jobs.push(yield* BindQueue.submit(q, ops))
      yield* BindQueue.flush(q)
      for (const j of jobs) assert.isUndefined(j.fence.error)
      assert.isAbove(s.allocator.counts.va + s.allocator.counts.vmBo + s.allocator.counts.ptPages, 0)
      assert.deepStrictEqual(yield* check(s.vm), [])
    })
  )

  it.effect("submit pre-allocates the worst case: 3 VA structs per map, 2 per unmap, a vm_bo per object map", () =>
    Effect.gen(function* () {
      const s = cpuVm()
      const q = yield* BindQueue.make(s.vm)
      const a = object("a", 8n * MiB)
      yield* bindAndCheck(q, [VmBind.map(GiB, 8n * MiB, a)])
      const before = { ...s.allocator.counts }
      yield* bindAndCheck(q, [
        VmBind.map(GiB + MiB, 4n * KiB, a, 4n * KiB),
        VmBind.mapNull(4n * GiB, 2n * MiB),
        VmBind.unmap(GiB + 4n * MiB, 4n * KiB),
        VmBind.unmap(GiB + 6n * MiB, 4n * KiB),
        VmBind.prefetch(GiB, 8n * MiB)
      ])
      const used = (k: keyof typeof before) => s.allocator.counts[k] - before[k]
      assert.strictEqual(used("va"), 3 + 3 + 2 + 2)
      assert.strictEqual(used("vmBo"), 1, "pre-allocated even though the vm_bo exists (obtain_prealloc)")
      assert.strictEqual(used("job"), 1)
      assert.isAbove(used("ptPages"), 0)
    })
  )

  it.effect("control: an allocation inside the signalling section is caught", () =>
    Effect.gen(function* () {
      const s = cpuVm()
      s.allocator.forbidInSignalling = true
      const a = object("a", 2n * MiB)
      const exit = yield* Effect.exit(Allocator.signalling(Effect.sync(() => VmBo.create(s.vm, a))))
      assert.isTrue(Exit.isFailure(exit))
      assert.isTrue(Exit.isSuccess(yield* Effect.exit(Effect.sync(() => VmBo.create(s.vm, a)))))
    })
  )
})
