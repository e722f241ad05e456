import { CpuPageTables, GpuDevice, GpuPageTables } from "@drmkit/gpu"
import { Allocator, BindQueue, GpuVm, PageTables, VaSpace, Verify, VmBind, VmBo } from "@drmkit/gpuva"
import { type DmaResv, Exec } from "@drmkit/resv-locking"
import { assert, layer } from "@effect/vitest"
import { Effect } from "effect"
import { GiB, KiB, MiB, object, scattered, wrapRun } from "./helpers.ts"

const TABLES = 512

/** A VM whose page tables live on the GPU, mirrored into a CPU reference arena by every job. */
const gpuVm = Effect.gen(function* () {
  const gpu = yield* GpuDevice.GpuDevice
  const arena = yield* GpuPageTables.make(gpu, TABLES)
  const cpu = new CpuPageTables.CpuPageTables(TABLES)
  const onGpu = PageTables.gpuExecutor(arena)
  const both = wrapRun(onGpu, (p, _n, plan) =>
    Effect.andThen(p.run, () => {
      const err = cpu.apply(plan)
      return err === undefined ? Effect.void : Effect.fail(new Error(err.message))
    })
  )
  const space = VaSpace.makeUnsafe({ name: "gpu-vm", start: 0n, range: 1n << 40n, pageSize: 4096n })
  const vm = GpuVm.make({ space, pageTables: PageTables.make({ tables: TABLES, executor: both }) })
  return { vm, arena, cpu, onGpu }
})

layer(GpuDevice.layer({ debug: true, label: "gpuva-test" }), { timeout: 120_000 })(
  "VM_BIND on the GPU walker",
  (it) => {
    it.effect(
      "after every bind the GPU translates every mapped page as the VA tree says, and GPU == CPU reference",
      () =>
        Effect.gen(function* () {
          const { vm, arena, cpu, onGpu } = yield* gpuVm
          const q = yield* BindQueue.make(vm)
          const a = object("a", 8n * MiB)
          const b = scattered("b", 2n * MiB)
          const c = object("c", 2n * MiB)
          const steps: Array<[string, ReadonlyArray<VmBind.BindOp>]> = [
            ["bind 8 MiB (2 MiB leaves)", [VmBind.map(GiB, 8n * MiB, a)]],
            ["mmap-style bind over the middle", [VmBind.map(GiB + 3n * MiB, 2n * MiB, b)]],
            ["munmap front", [VmBind.unmap(GiB, 4n * KiB)]],
            ["munmap back", [VmBind.unmap(GiB + 8n * MiB - 64n * KiB, 64n * KiB)]],
            ["munmap middle", [VmBind.unmap(GiB + 4n * MiB, 12n * KiB)]],
            [
              "bind array of 64 ops",
              Array.from({ length: 64 }, (_, i) =>
                VmBind.map(2n * GiB + BigInt(i) * 256n * KiB, 64n * KiB, c, BigInt(i % 8) * 64n * KiB)
              )
            ],
            [
              "sparse NULL range with an object inside",
              [VmBind.mapNull(4n * GiB, 64n * MiB), VmBind.map(4n * GiB + 2n * MiB, 2n * MiB, c)]
            ],
            ["unbind-all of c", [VmBind.unmapAll(c)]],
            [
              "shared-pte/pde/pde2 pages: neighbours 4 KiB, 2 MiB, 1 GiB apart",
              [4096n, 2n * MiB, GiB].flatMap((stride, k) =>
                [0n, 1n, 2n, 3n].map((i) =>
                  VmBind.map(16n * GiB * BigInt(k + 1) + i * stride, 4n * KiB, b, i * 4n * KiB)
                )
              )
            ],
            [
              "unbind the middle neighbours",
              [VmBind.unmap(32n * GiB + 2n * MiB, 4n * MiB), VmBind.unmap(48n * GiB + GiB, 4n * KiB)]
            ],
            ["unbind everything", [VmBind.unmap(0n, 1n << 40n)]]
          ]
          for (const [name, ops] of steps) {
            const job = yield* BindQueue.submit(q, ops)
            yield* BindQueue.flush(q)
            assert.isUndefined(job.fence.error, name)
            const r = yield* Verify.verify(vm, Verify.sampleAddrs(vm.space, 256))
            assert.deepStrictEqual(r.mismatches, [], name)
            const gpuWords = yield* GpuPageTables.read(arena)
            assert.isTrue(
              gpuWords.every((w, i) => w === cpu.memory[i]),
              `${name}: GPU arena == CPU reference`
            )
          }
          assert.strictEqual(vm.space.count, 0)
          assert.isUndefined(VmBo.peek(vm, a))
          assert.strictEqual(onGpu.submissions(), steps.length, "one GPU submission per bind array")
        })
    )

    it.effect("control: a page-table job that never reached the GPU is detected", () =>
      Effect.gen(function* () {
        const gpu = yield* GpuDevice.GpuDevice
        const arena = yield* GpuPageTables.make(gpu, 64)
        const lossy = wrapRun(PageTables.gpuExecutor(arena), (p, n) =>
          n === 2 ? Effect.sync(() => p.release()) : p.run
        )
        const space = VaSpace.makeUnsafe({ name: "lossy", start: 0n, range: 1n << 40n, pageSize: 4096n })
        const vm = GpuVm.make({ space, pageTables: PageTables.make({ tables: 64, executor: lossy }) })
        const q = yield* BindQueue.make(vm)
        const a = object("la", 2n * MiB)
        yield* BindQueue.submit(q, [VmBind.map(GiB, 2n * MiB, a)])
        yield* BindQueue.submit(q, [VmBind.unmap(GiB + 64n * KiB, 4n * KiB)])
        yield* BindQueue.flush(q)
        const r = yield* Verify.verify(vm)
        assert.isAbove(r.checked, 500)
        assert.strictEqual(r.mismatches.length, 1)
        assert.include(r.mismatches[0], "0x40010000: want Fault, got 0x")
      })
    )

    it.effect("runJob creates no GPU buffers or bind groups: the job is staged at submit", () =>
      Effect.gen(function* () {
        const gpu = yield* GpuDevice.GpuDevice
        const dev = gpu.device as unknown as Record<string, (...args: Array<unknown>) => unknown>
        const counts = { inRunJob: 0, atSubmit: 0 }
        const originals = { createBuffer: dev.createBuffer!, createBindGroup: dev.createBindGroup! }
        for (const name of ["createBuffer", "createBindGroup"] as const) {
          const original = originals[name]
          dev[name] = (...args: Array<unknown>) => {
            if (Allocator.inSignallingPath()) counts.inRunJob++
            else counts.atSubmit++
            return original.apply(gpu.device, args)
          }
        }
        yield* Effect.addFinalizer(() =>
          Effect.sync(() => {
            dev.createBuffer = originals.createBuffer
            dev.createBindGroup = originals.createBindGroup
          })
        )
        const { vm } = yield* gpuVm
        const q = yield* BindQueue.make(vm)
        const a = scattered("ra", 4n * MiB)
        const jobs = []
        jobs.push(yield* BindQueue.submit(q, [VmBind.map(GiB, 4n * MiB, a), VmBind.mapNull(2n * GiB, 2n * MiB)]))
        jobs.push(yield* BindQueue.submit(q, [VmBind.unmap(GiB + MiB, 8n * KiB), VmBind.unmapAll(a)]))
        yield* BindQueue.flush(q)
        for (const j of jobs) assert.isUndefined(j.fence.error)
        assert.isAbove(counts.atSubmit, 0, "control: the spy sees the staging")
        assert.strictEqual(counts.inRunJob, 0)
      })
    )

    it.effect(
      "invalidate (move_notify zap): the GPU walker faults on the object's pages, the rest intact, rebind",
      () =>
        Effect.gen(function* () {
          const { vm, arena, cpu } = yield* gpuVm
          const q = yield* BindQueue.make(vm)
          const a = object("za", 4n * MiB)
          const b = scattered("zb", 2n * MiB)
          const fault = { invalidated: "fault" } as const
          yield* BindQueue.submit(q, [
            VmBind.map(GiB, 4n * MiB, a),
            VmBind.map(GiB + 4n * MiB, 2n * MiB, b),
            VmBind.map(2n * GiB + 8n * KiB, 64n * KiB, a, 64n * KiB)
          ])
          yield* BindQueue.flush(q)
          const before = yield* Effect.orDie(vm.pageTables!.translate([GiB + 4n * MiB, GiB + 5n * MiB]))
          assert.isDefined(before[0])
          const job = yield* Effect.scoped(
            Effect.gen(function* () {
              const exec = yield* Exec.make<DmaResv.DmaResv>()
              yield* Exec.untilAllLocked(exec, Exec.prepare(exec, a.resv, 1))
              return yield* BindQueue.invalidate(q, Exec.held(exec, a.resv), a)
            })
          )
          yield* BindQueue.flush(q)
          assert.isUndefined(job!.fence.error)
          const r = yield* Verify.verify(vm, Verify.sampleAddrs(vm.space, 256), fault)
          assert.deepStrictEqual(r.mismatches, [])
          const gpuSays = yield* Effect.orDie(vm.pageTables!.translate([GiB, GiB + 3n * MiB, 2n * GiB + 8n * KiB]))
          assert.deepStrictEqual(gpuSays, [undefined, undefined, undefined])
          assert.deepStrictEqual(
            yield* Effect.orDie(vm.pageTables!.translate([GiB + 4n * MiB, GiB + 5n * MiB])),
            before
          )
          const gpuWords = yield* GpuPageTables.read(arena)
          assert.isTrue(
            gpuWords.every((w, i) => w === cpu.memory[i]),
            "GPU arena == CPU reference"
          )
          yield* BindQueue.submit(q, [VmBind.prefetch(GiB, GiB + 64n * MiB)])
          yield* BindQueue.flush(q)
          assert.deepStrictEqual((yield* Verify.verify(vm, Verify.sampleAddrs(vm.space, 256), fault)).mismatches, [])
          assert.isDefined((yield* Effect.orDie(vm.pageTables!.translate([GiB])))[0])
        })
    )
  }
)
