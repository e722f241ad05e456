import { BindQueue, GpuVa, GpuVm, VmBind, VmBo } from "@drmkit/gpuva"
import { DmaFence, DmaResv, Exec } from "@drmkit/resv-locking"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { bindAndCheck, check, cpuVm, entriesWritten, GiB, KiB, MiB, object, scattered, tree } from "./helpers.ts"

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

  it.effect("a munmap-style hole or an mmap-style overwrite rewrites only the delta, not the surviving pieces", () =>
    Effect.gen(function* () {
      const { vm } = cpuVm()
      const q = yield* BindQueue.make(vm)
      const a = scattered("a", 8n * MiB)
      const b = scattered("b", 64n * KiB)
      yield* bindAndCheck(q, [VmBind.map(GiB, 8n * MiB, a)])
      const job = yield* bindAndCheck(q, [VmBind.unmap(GiB + 3n * MiB, 16n * KiB)])
      assert.strictEqual(entriesWritten(job), 4, "4 PTEs cleared; the 2044 surviving PTEs are untouched")
      const over = yield* bindAndCheck(q, [VmBind.map(GiB + 5n * MiB, 8n * KiB, b)])
      assert.strictEqual(entriesWritten(over), 2, "Remap(prev, next) + Map: only the 2 PTEs of the new object")
      assert.strictEqual(vm.space.count, 4)
    })
  )

  it.effect("huge leaves exactly where range and backing are aligned (xe_pt_hugepte_possible)", () =>
    Effect.gen(function* () {
      const { vm } = cpuVm()
      const q = yield* BindQueue.make(vm)
      const a = object("a", 2n * GiB, undefined, 1 << 18) // backing 1 GiB aligned
      const base = 4n * GiB
      /** Tables the bind allocated per level [0, 1, 2]: no level-0 table = no 4 KiB PTEs. */
      const tables = (ops: ReadonlyArray<VmBind.BindOp>) =>
        Effect.gen(function* () {
          const job = yield* bindAndCheck(q, ops)
          yield* bindAndCheck(q, [VmBind.unmap(base, 2n * GiB)])
          return [0, 1, 2].map((l) => job.plan.allocated.filter((t) => t.level === l).length)
        })
      const skewed: VmBind.BindObject = {
        ...a,
        name: "skewed",
        frames: { _tag: "Contiguous", baseFrame: (1 << 21) + 1 }
      }
      assert.deepStrictEqual(yield* tables([VmBind.map(base, 2n * MiB, a)]), [0, 1, 1], "one 2 MiB leaf")
      assert.deepStrictEqual(yield* tables([VmBind.map(base + GiB, GiB, a)]), [0, 0, 1], "one 1 GiB leaf")
      assert.deepStrictEqual(yield* tables([VmBind.mapNull(base, 2n * MiB)]), [0, 1, 1], "NULL: 2 MiB leaf")
      assert.deepStrictEqual(
        yield* tables([VmBind.map(base, 2n * MiB + 4n * KiB, a)]),
        [1, 1, 1],
        "2 MiB leaf + one 4 KiB table for the tail"
      )
      for (const [why, op] of [
        ["backing offset not 2 MiB aligned", VmBind.map(base, 2n * MiB, a, 4n * KiB)],
        ["backing frame not 2 MiB aligned", VmBind.map(base, 2n * MiB, skewed)],
        ["scattered backing", VmBind.map(base, 2n * MiB, scattered("s", 2n * MiB))],
        ["VA not 2 MiB aligned", VmBind.map(base + 4n * KiB, 2n * MiB, a)]
      ] as const) {
        const n = yield* tables([op])
        assert.isAtLeast(n[0] ?? 0, 1, `${why}: 4 KiB PTEs`)
      }
    })
  )

  it.effect("a keep re-map writes only the missing part", () =>
    Effect.gen(function* () {
      const { vm } = cpuVm()
      const q = yield* BindQueue.make(vm)
      const a = object("a", 4n * MiB)
      yield* bindAndCheck(q, [VmBind.map(GiB, 64n * KiB, a)])
      const job = yield* bindAndCheck(q, [VmBind.map(GiB, 128n * KiB, a)])
      assert.strictEqual(entriesWritten(job), 16, "only the 16 new 4 KiB PTEs are written")
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

  it.effect("evict → validate moves the object and invalidates its VAs → prefetch rebinds the new pages", () =>
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
      } as VmBind.BindObject
      const s = cpuVm()
      const vm = GpuVm.make({
        space: s.vm.space,
        pageTables: s.vm.pageTables!,
        ops: {
          vmBoValidate: (b, held) =>
            Effect.gen(function* () {
              frames = moved.frames // "ttm move" back into another placement, still copying
              for (const va of b.vas) va.flags |= GpuVa.Flags.Invalidated
              yield* DmaResv.reserveFences(held, 1)
              yield* DmaResv.addFence(held, move, "kernel")
            }).pipe(Effect.orDie)
        }
      })
      const q = yield* BindQueue.make(vm)
      yield* bindAndCheck(q, [VmBind.map(GiB, 2n * MiB, m), VmBind.map(2n * GiB, 2n * MiB, m, 2n * MiB)])
      yield* Effect.scoped(
        Effect.gen(function* () {
          const exec = yield* GpuVm.execLock(vm, 0)
          VmBo.evictObject(m, true, Exec.held(exec, m.resv))
          assert.strictEqual(vm.evicted.size, 1)
          yield* GpuVm.validate(vm, exec)
        })
      )
      assert.strictEqual(vm.evicted.size, 0)
      assert.isNotEmpty(yield* check(vm), "page tables still point at the old pages")
      const job = yield* BindQueue.submit(q, [VmBind.prefetch(GiB, 2n * GiB)])
      assert.isAbove(job.plan.descriptors.length, 0)
      assert.include(job.deps, move, "the rebind waits for the move (KERNEL fence)")
      for (let i = 0; i < 10; i++) yield* Effect.yieldNow
      assert.isFalse(job.fence.isSignaled)
      move.signal()
      yield* BindQueue.flush(q)
      assert.deepStrictEqual(yield* check(vm), [])
      for (const va of vm.space) assert.strictEqual(va.flags & GpuVa.Flags.Invalidated, 0)
    })
  )

  it.effect("the out-fence is published to the VM resv and to external objects as BOOKKEEP", () =>
    Effect.gen(function* () {
      const { vm } = cpuVm()
      const q = yield* BindQueue.make(vm)
      const priv = object("priv", 2n * MiB, vm.resv)
      const ext = object("ext", 2n * MiB)
      const idle = object("idle-extobj", 2n * MiB)
      yield* bindAndCheck(q, [VmBind.map(8n * GiB, 2n * MiB, idle)])
      const gate = DmaFence.make(DmaFence.contextAlloc("gate"))
      const job = yield* BindQueue.submit(q, [VmBind.map(GiB, 2n * MiB, priv), VmBind.map(2n * GiB, 2n * MiB, ext)], {
        inFences: [gate]
      })
      // drm_gpuvm_exec_lock + drm_gpuvm_resv_add_fence: every extobj of the VM is in the one
      // transaction and fenced, also one the array does not touch
      for (const r of [vm.resv, ext.resv, idle.resv]) {
        assert.include(yield* DmaResv.getFences(r, "bookkeep"), job.fence)
        assert.notInclude(yield* DmaResv.getFences(r, "read"), job.fence)
      }
      assert.deepStrictEqual(
        [...vm.extobjs].map((b) => b.obj.name),
        ["idle-extobj", "ext"]
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

  it.effect("closing the queue's scope runs every queued job first", () =>
    Effect.gen(function* () {
      const { vm } = cpuVm()
      const a = object("a", 2n * MiB)
      const gate = DmaFence.make(DmaFence.contextAlloc("gate"))
      const jobs = yield* Effect.scoped(
        Effect.gen(function* () {
          const q = yield* BindQueue.make(vm)
          const j1 = yield* BindQueue.submit(q, [VmBind.map(GiB, 2n * MiB, a)], { inFences: [gate] })
          const j2 = yield* BindQueue.submit(q, [VmBind.unmap(GiB, 4n * KiB)])
          yield* Effect.forkDetach(
            Effect.andThen(
              Effect.yieldNow,
              Effect.sync(() => gate.signal())
            )
          )
          return [j1, j2]
        })
      )
      for (const j of jobs) assert.isTrue(j.fence.isSignaled)
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
      assert.deepStrictEqual(ja.span, [GiB + 2n * MiB, GiB + 4n * MiB], "one 2 MiB entry of a level-1 table")
      assert.isTrue(nearBlocked)
      assert.isTrue(near.fence.isSignaled)
      assert.deepStrictEqual(yield* check(vm), [])
    })
  )
})
