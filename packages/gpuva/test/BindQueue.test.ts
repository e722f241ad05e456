import { Allocator, BindQueue, GpuVm, VmBind, VmBo } from "@drmkit/gpuva"
import { DmaFence, DmaResv } from "@drmkit/resv-locking"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit } from "effect"
import { check, cpuVm, GiB, KiB, MiB, object, scattered, tree } from "./helpers.ts"

const bindAndCheck = (q: BindQueue.BindQueue, ops: ReadonlyArray<VmBind.BindOp>) =>
  Effect.gen(function* () {
    const job = yield* BindQueue.submit(q, ops)
    yield* BindQueue.flush(q)
    assert.isTrue(job.fence.isSignaled)
    assert.isUndefined(job.fence.error)
    assert.deepStrictEqual(yield* check(q.vm), [])
    assert.deepStrictEqual(q.vm.space.check(), [])
    return job
  })

describe("VM_BIND on the CPU reference", () => {
  it.effect("map, remap and unmap keep page tables and VA tree in agreement", () =>
    Effect.gen(function* () {
      const { vm } = cpuVm()
      const q = yield* BindQueue.make(vm)
      const a = object("a", 8n * MiB)
      const b = object("b", 64n * KiB)
      yield* bindAndCheck(q, [VmBind.map(1n * GiB, 8n * MiB, a)])
      yield* bindAndCheck(q, [VmBind.map(1n * GiB + 2n * MiB + 4n * KiB, 64n * KiB, b)])
      assert.deepStrictEqual(tree(vm), [
        [1n * GiB, 2n * MiB + 4n * KiB, "a", 0n],
        [1n * GiB + 2n * MiB + 4n * KiB, 64n * KiB, "b", 0n],
        [1n * GiB + 2n * MiB + 68n * KiB, 6n * MiB - 68n * KiB, "a", 2n * MiB + 68n * KiB]
      ])
      yield* bindAndCheck(q, [VmBind.unmap(1n * GiB, 8n * MiB)])
      assert.strictEqual(vm.space.count, 0)
      assert.deepStrictEqual(GpuVm.leftovers(vm), [])
      assert.strictEqual(vm.pageTables?.shadow.tablesInUse, 1, "every table but the root was freed")
    })
  )

  it.effect("munmap-style partial unbinds at the front, back and middle of a large mapping", () =>
    Effect.gen(function* () {
      const { vm } = cpuVm()
      const q = yield* BindQueue.make(vm)
      const base = 2n * GiB
      const a = object("a", 16n * MiB)
      yield* bindAndCheck(q, [VmBind.map(base, 16n * MiB, a)])
      yield* bindAndCheck(q, [VmBind.unmap(base, 4n * KiB)])
      yield* bindAndCheck(q, [VmBind.unmap(base + 16n * MiB - 2n * MiB, 2n * MiB)])
      yield* bindAndCheck(q, [VmBind.unmap(base + 3n * MiB, 4n * MiB + 12n * KiB)])
      assert.deepStrictEqual(tree(vm), [
        [base + 4n * KiB, 3n * MiB - 4n * KiB, "a", 4n * KiB],
        [base + 7n * MiB + 12n * KiB, 7n * MiB - 12n * KiB, "a", 7n * MiB + 12n * KiB]
      ])
      const b = VmBo.peek(vm, a)
      assert.strictEqual(b?.vas.size, 2)
      assert.strictEqual(b?.refs, 2)
    })
  )

  it.effect("mmap-style binds over existing mappings (front, back, middle, spanning several)", () =>
    Effect.gen(function* () {
      const { vm } = cpuVm()
      const q = yield* BindQueue.make(vm)
      const base = 4n * GiB
      const a = object("a", 8n * MiB)
      const b = scattered("b", 8n * MiB)
      yield* bindAndCheck(q, [VmBind.map(base, 8n * MiB, a)])
      yield* bindAndCheck(q, [VmBind.map(base, 64n * KiB, b)])
      yield* bindAndCheck(q, [VmBind.map(base + 8n * MiB - 64n * KiB, 64n * KiB, b, 64n * KiB)])
      yield* bindAndCheck(q, [VmBind.map(base + 2n * MiB, 2n * MiB, b, 2n * MiB)])
      yield* bindAndCheck(q, [VmBind.map(base + 32n * KiB, 8n * MiB - 64n * KiB, a, 32n * KiB)])
      assert.strictEqual(vm.space.count, 3)
    })
  )

  it.effect("shared-pte/pde/pde2/pde3-page: neighbours 4 KiB, 2 MiB, 1 GiB, 512 GiB apart share tables", () =>
    Effect.gen(function* () {
      const { vm } = cpuVm("shared", { range: 1n << 47n })
      const q = yield* BindQueue.make(vm)
      for (const stride of [4n * KiB, 2n * MiB, GiB, 512n * GiB]) {
        const objs = Array.from({ length: 4 }, (_, i) => scattered(`s${i}`, 4n * KiB))
        const base = 512n * GiB * 2n
        yield* bindAndCheck(
          q,
          objs.map((o, i) => VmBind.map(base + BigInt(i) * stride, 4n * KiB, o))
        )
        for (let i = 0; i < 4; i++) yield* bindAndCheck(q, [VmBind.unmap(base + BigInt(i) * stride, 4n * KiB)])
        assert.strictEqual(vm.pageTables?.shadow.tablesInUse, 1, `stride ${stride}: all tables freed`)
      }
    })
  )

  it.effect("a munmap-style hole rewrites only the delta, not the surviving pieces", () =>
    Effect.gen(function* () {
      const { vm } = cpuVm()
      const q = yield* BindQueue.make(vm)
      const a = scattered("a", 8n * MiB)
      yield* bindAndCheck(q, [VmBind.map(GiB, 8n * MiB, a)])
      const job = yield* bindAndCheck(q, [VmBind.unmap(GiB + 3n * MiB, 16n * KiB)])
      const entries = job.plan.descriptors.reduce((s, d) => s + d.count, 0)
      assert.strictEqual(entries, 4, "4 PTEs cleared; the 2044 surviving PTEs are untouched")
    })
  )

  it.effect("a keep re-map writes only the missing part", () =>
    Effect.gen(function* () {
      const { vm } = cpuVm()
      const q = yield* BindQueue.make(vm)
      const a = object("a", 4n * MiB)
      yield* bindAndCheck(q, [VmBind.map(GiB, 64n * KiB, a)])
      const job = yield* bindAndCheck(q, [VmBind.map(GiB, 128n * KiB, a)])
      const entries = job.plan.descriptors.reduce((s, d) => s + d.count, 0)
      assert.strictEqual(entries, 16, "only the 16 new 4 KiB PTEs are written")
    })
  )

  it.effect("a bind array of many ops is one job and one submission", () =>
    Effect.gen(function* () {
      const { vm } = cpuVm()
      const q = yield* BindQueue.make(vm)
      const objs = Array.from({ length: 8 }, (_, i) => object(`o${i}`, 4n * MiB))
      const ops: Array<VmBind.BindOp> = []
      for (let i = 0; i < 256; i++) {
        const o = objs[i % 8]!
        ops.push(VmBind.map(GiB + BigInt(i) * 4n * MiB, BigInt(1 + (i % 16)) * 64n * KiB, o, BigInt(i % 4) * 64n * KiB))
      }
      for (let i = 0; i < 64; i++) ops.push(VmBind.unmap(GiB + BigInt(i) * 16n * MiB, 64n * KiB))
      const before = vm.pageTables!.executor.submissions()
      yield* bindAndCheck(q, ops)
      assert.strictEqual(vm.pageTables!.executor.submissions() - before, 1)
      assert.strictEqual(vm.extobjs.size, 8)
    })
  )

  it.effect("unbind-all of an object removes every mapping of it and its vm_bo", () =>
    Effect.gen(function* () {
      const { vm } = cpuVm()
      const q = yield* BindQueue.make(vm)
      const a = object("a", 2n * MiB)
      const b = object("b", 2n * MiB)
      const ops: Array<VmBind.BindOp> = []
      for (let i = 0n; i < 8n; i++) ops.push(VmBind.map(GiB + i * 4n * MiB, 2n * MiB, i % 2n === 0n ? a : b))
      yield* bindAndCheck(q, ops)
      assert.strictEqual(VmBo.peek(vm, a)?.refs, 4)
      yield* bindAndCheck(q, [VmBind.unmapAll(a)])
      assert.deepStrictEqual(
        tree(vm).map((t) => t[2]),
        ["b", "b", "b", "b"]
      )
      assert.isUndefined(VmBo.peek(vm, a))
      assert.deepStrictEqual(
        [...vm.extobjs].map((x) => x.obj.name),
        ["b"]
      )
    })
  )

  it.effect("sparse NULL mappings, objects bound into them, then unbound", () =>
    Effect.gen(function* () {
      const { vm } = cpuVm()
      const q = yield* BindQueue.make(vm)
      const a = object("a", 2n * MiB)
      yield* bindAndCheck(q, [VmBind.mapNull(GiB, GiB)])
      yield* bindAndCheck(q, [VmBind.map(GiB + 6n * MiB, 2n * MiB, a), VmBind.map(GiB + 64n * KiB, 64n * KiB, a)])
      assert.strictEqual(vm.space.count, 5)
      yield* bindAndCheck(q, [VmBind.unmap(GiB + 4n * MiB, 8n * MiB)])
      yield* bindAndCheck(q, [VmBind.unmap(GiB, GiB)])
      assert.strictEqual(vm.space.count, 0)
    })
  )

  it.effect("prefetch rebinds invalidated mappings and is a no-op otherwise", () =>
    Effect.gen(function* () {
      const { vm } = cpuVm()
      const q = yield* BindQueue.make(vm)
      const a = object("a", 2n * MiB)
      yield* bindAndCheck(q, [VmBind.map(GiB, 2n * MiB, a)])
      const idle = yield* bindAndCheck(q, [VmBind.prefetch(GiB, 2n * MiB)])
      assert.strictEqual(idle.plan.descriptors.length, 0)
      const va = vm.space.find(GiB, 2n * MiB)!
      va.flags |= 1
      const re = yield* bindAndCheck(q, [VmBind.prefetch(GiB, 4n * KiB)])
      assert.isAbove(re.plan.descriptors.length, 0)
      assert.strictEqual(va.flags & 1, 0)
    })
  )

  it.effect("the out-fence is published to the VM resv and to external objects as BOOKKEEP", () =>
    Effect.gen(function* () {
      const { vm } = cpuVm()
      const q = yield* BindQueue.make(vm)
      const priv = object("priv", 2n * MiB, vm.resv)
      const ext = object("ext", 2n * MiB)
      const gate = DmaFence.make(DmaFence.contextAlloc("gate"))
      const job = yield* BindQueue.submit(q, [VmBind.map(GiB, 2n * MiB, priv), VmBind.map(2n * GiB, 2n * MiB, ext)], {
        inFences: [gate]
      })
      for (const r of [vm.resv, ext.resv]) {
        assert.include(yield* DmaResv.getFences(r, "bookkeep"), job.fence)
        assert.notInclude(yield* DmaResv.getFences(r, "read"), job.fence)
      }
      assert.deepStrictEqual(
        [...vm.extobjs].map((b) => b.obj.name),
        ["ext"]
      )
      gate.signal()
      yield* BindQueue.flush(q)
      assert.deepStrictEqual(yield* check(vm), [])
    })
  )

  it.effect("jobs run in submission order behind in-fences; the tree is updated at submit", () =>
    Effect.gen(function* () {
      const { vm } = cpuVm()
      const q = yield* BindQueue.make(vm)
      const a = object("a", 2n * MiB)
      const gate = DmaFence.make(DmaFence.contextAlloc("gate"))
      const j1 = yield* BindQueue.submit(q, [VmBind.map(GiB, 2n * MiB, a)], { inFences: [gate] })
      const j2 = yield* BindQueue.submit(q, [VmBind.unmap(GiB, 1n * MiB)])
      assert.strictEqual(vm.space.count, 1, "tree already reflects both binds")
      yield* Effect.yieldNow
      assert.isFalse(j1.fence.isSignaled)
      assert.isFalse(j2.fence.isSignaled, "in order: j2 waits for j1")
      gate.signal()
      yield* BindQueue.flush(q)
      assert.isTrue(j1.fence.timestamp! <= j2.fence.timestamp!)
      assert.deepStrictEqual(yield* check(vm), [])
    })
  )

  it.effect("unbinds wait for GPU work on the VM resv; maps wait for the object's KERNEL (move) fences", () =>
    Effect.gen(function* () {
      const { vm } = cpuVm()
      const q = yield* BindQueue.make(vm)
      const a = object("a", 2n * MiB)
      yield* bindAndCheck(q, [VmBind.map(GiB, 2n * MiB, a)])
      const ctx = DmaFence.contextAlloc("gfx")
      const exec = DmaFence.make(ctx)
      const move = DmaFence.make(DmaFence.contextAlloc("ttm-move"))
      yield* Effect.scoped(
        Effect.gen(function* () {
          const hv = yield* DmaResv.lock(vm.resv)
          yield* DmaResv.reserveFences(hv, 1)
          yield* DmaResv.addFence(hv, exec, "bookkeep")
          yield* DmaResv.unlock(hv)
          const ha = yield* DmaResv.lock(a.resv)
          yield* DmaResv.reserveFences(ha, 1)
          yield* DmaResv.addFence(ha, move, "kernel")
          yield* DmaResv.unlock(ha)
        })
      )
      const fresh = yield* BindQueue.submit(q, [VmBind.mapNull(4n * GiB, 2n * MiB)])
      assert.notInclude(fresh.deps, exec, "a map into an empty range does not wait for GPU work")
      const unbind = yield* BindQueue.submit(q, [VmBind.unmap(GiB, 4n * KiB)])
      assert.include(unbind.deps, exec)
      assert.notInclude(unbind.deps, fresh.fence, "bind jobs are ordered by the queue / range fences")
      const remap = yield* BindQueue.submit(q, [VmBind.map(8n * GiB, 2n * MiB, a)])
      assert.include(remap.deps, move)
      for (let i = 0; i < 10; i++) yield* Effect.yieldNow
      assert.isTrue(fresh.fence.isSignaled)
      assert.isFalse(unbind.fence.isSignaled)
      exec.signal()
      move.signal()
      yield* BindQueue.flush(q)
      assert.isTrue(remap.fence.isSignaled)
      assert.deepStrictEqual(yield* check(vm), [])
    })
  )

  it.effect("queues are independent; overlapping ranges are ordered by range fences", () =>
    Effect.gen(function* () {
      const { vm } = cpuVm()
      const qa = yield* BindQueue.make(vm, "a")
      const qb = yield* BindQueue.make(vm, "b")
      const a = object("a", 4n * MiB)
      // the directory structure both regions need exists already
      yield* bindAndCheck(qa, [VmBind.map(GiB, 4n * KiB, a), VmBind.map(8n * GiB, 4n * KiB, a)])
      const gate = DmaFence.make(DmaFence.contextAlloc("gate"))
      const ja = yield* BindQueue.submit(qa, [VmBind.map(GiB + 2n * MiB, 2n * MiB, a, 2n * MiB)], { inFences: [gate] })
      const far = yield* BindQueue.submit(qb, [VmBind.map(8n * GiB + 2n * MiB, 2n * MiB, a, 2n * MiB)])
      const near = yield* BindQueue.submit(qb, [VmBind.map(GiB + 3n * MiB, 4n * KiB, a)])
      for (let i = 0; i < 50 && !far.fence.isSignaled; i++) yield* Effect.yieldNow
      const farDone = far.fence.isSignaled
      const nearBlocked = !near.fence.isSignaled
      gate.signal()
      yield* BindQueue.flush(qa)
      yield* BindQueue.flush(qb)
      assert.isTrue(farDone, "a different queue, a disjoint range: not blocked")
      assert.notInclude(far.deps, ja.fence)
      assert.include(near.deps, ja.fence, "overlapping job depends on the other queue's job")
      assert.isTrue(nearBlocked)
      assert.isTrue(near.fence.isSignaled)
      assert.deepStrictEqual(yield* check(vm), [])
    })
  )
})

describe("a failed bind changes nothing", () => {
  const snapshot = (s: ReturnType<typeof cpuVm>, objs: ReadonlyArray<VmBind.BindObject>) => ({
    tree: tree(s.vm),
    memory: Array.from(s.cpu.memory.subarray(0, 1024 * 64)).join(","),
    tables: s.vm.pageTables!.shadow.tablesInUse,
    extobjs: [...s.vm.extobjs].map((b) => b.obj.name),
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
