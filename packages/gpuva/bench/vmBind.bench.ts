/**
 * VM_BIND end to end (validate, lock, split/merge, stage, plan, ONE page-table submission, fence):
 * 1 GiB in 4 KiB pages (262 144 PTEs) on the GPU walker vs the CPU reference executor, measured in
 * the same process; and the kernel's ENOBUFS shape, a bind array of 1024 × 2 MiB.
 */
import { type BenchRow, median, report } from "@drmkit/bench-kit"
import { CpuPageTables, GpuDevice, GpuPageTables } from "@drmkit/gpu"
import { BindQueue, GpuVm, PageTables, VaSpace, Verify, VmBind } from "@drmkit/gpuva"
import { DmaResv } from "@drmkit/resv-locking"
import { Effect } from "effect"

const MiB = 1n << 20n
const GiB = 1n << 30n
const TABLES = 8192
const SAMPLES = 5

const contiguous = (name: string, size: bigint, baseFrame: number): VmBind.BindObject => ({
  name,
  size,
  resv: DmaResv.make(name),
  frames: { _tag: "Contiguous", baseFrame }
})
const scattered = (name: string, size: bigint, base: number): VmBind.BindObject => {
  const n = Number(size / 4096n)
  const frames = new Uint32Array(n)
  for (let i = 0; i < n; i++) frames[i] = base + ((i * 7919) % n)
  return { name, size, resv: DmaResv.make(name), frames: { _tag: "Pages", frames } }
}

const makeVm = (executor: PageTables.Executor, huge: boolean) =>
  GpuVm.make({
    space: VaSpace.makeUnsafe({ name: "bench", start: 0n, range: 1n << 47n, pageSize: 4096n }),
    pageTables: PageTables.make({ tables: TABLES, executor, maxHugeLevel: huge ? 2 : 0 })
  })

/** Median ms of `bind` (submit + wait for the out-fence); the mapping is torn down between samples. */
const timeBind = (vm: GpuVm.GpuVm<unknown>, ops: ReadonlyArray<VmBind.BindOp>) =>
  Effect.scoped(
    Effect.gen(function* () {
      const q = yield* BindQueue.make(vm)
      const ts: Array<number> = []
      let subs = 0
      let disp = 0
      for (let i = 0; i <= SAMPLES; i++) {
        const s0 = vm.pageTables?.executor.submissions() ?? 0
        const d0 = vm.pageTables?.executor.dispatches() ?? 0
        const t0 = performance.now()
        yield* BindQueue.submit(q, ops)
        yield* BindQueue.flush(q)
        if (i > 0) ts.push(performance.now() - t0)
        subs = (vm.pageTables?.executor.submissions() ?? 0) - s0
        disp = (vm.pageTables?.executor.dispatches() ?? 0) - d0
        if (i === SAMPLES) {
          const r = yield* Verify.verify(
            vm,
            Verify.sampleAddrs(vm.space, 64).filter((_, k) => k % 97 === 0)
          )
          if (r.mismatches.length > 0) throw new Error(`translation mismatch: ${r.mismatches[0]}`)
        }
        yield* BindQueue.submit(q, [VmBind.unmap(0n, 1n << 47n)])
        yield* BindQueue.flush(q)
      }
      return { ms: median(ts), subs, disp }
    })
  )

const program = Effect.scoped(
  Effect.gen(function* () {
    const gpu = yield* GpuDevice.make({ debug: false, label: "gpuva-bench" })
    console.log(`adapter: ${gpu.adapter.description} / ${gpu.adapter.device} (backend ${gpu.adapter.backend})`)
    const goal = gpu.adapter.software ? "llvmpipe" : "GPU"
    const rows: Array<BenchRow> = []
    const gpuVmOf = (huge: boolean) =>
      Effect.map(GpuPageTables.make(gpu, TABLES), (arena) => {
        const ex = PageTables.gpuExecutor(arena)
        return { vm: makeVm(ex, huge), ex }
      })
    const cpuVmOf = (huge: boolean) => makeVm(PageTables.cpuExecutor(new CpuPageTables.CpuPageTables(TABLES)), huge)

    // warm both paths once, untimed, so that the JIT warm-up of the code they share (VA tree,
    // split/merge, planner) is not charged to whichever executor happens to be measured first
    for (const obj of [contiguous("warm-c", GiB, 1 << 20), scattered("warm-s", GiB, 1 << 20)]) {
      yield* timeBind((yield* gpuVmOf(false)).vm, [VmBind.map(GiB, GiB, obj)])
      yield* timeBind(cpuVmOf(false), [VmBind.map(GiB, GiB, obj)])
    }

    for (const [label, obj] of [
      ["contiguous (generator descriptors)", contiguous("c1g", GiB, 1 << 20)],
      ["scattered (literal descriptors)", scattered("s1g", GiB, 1 << 20)]
    ] as const) {
      const ops = [VmBind.map(GiB, GiB, obj)]
      const g = yield* gpuVmOf(false)
      const onGpu = yield* timeBind(g.vm, ops)
      const onCpu = yield* timeBind(cpuVmOf(false), ops)
      rows.push({
        name: `VM_BIND 1 GiB in 4 KiB pages (262144 PTEs), ${label}`,
        value: onGpu.ms,
        unit: "ms",
        peer: "CPU reference executor",
        peerValue: onCpu.ms,
        ratio: onCpu.ms / onGpu.ms,
        goal: `one GPU submission; >= 1.0x CPU (${goal})`,
        pass: onGpu.subs === 1 && onCpu.ms / onGpu.ms >= 1
      })
      rows.push({
        name: `  GPU submissions / dispatches per bind, ${label}`,
        value: onGpu.subs,
        unit: `submission, ${onGpu.disp} dispatch(es)`
      })
    }

    {
      // a stream of 8 binds of 1 GiB each (4 KiB PTEs): with the GPU executor the page-table job of
      // bind i runs while the CPU stages bind i+1; the CPU executor writes on the submitting thread
      const obj = contiguous("stream", GiB, 1 << 20)
      const ops = Array.from({ length: 8 }, (_, i) => [VmBind.map(BigInt(i + 1) * GiB, GiB, obj)])
      const stream = (vm: GpuVm.GpuVm<unknown>) =>
        Effect.scoped(
          Effect.gen(function* () {
            const q = yield* BindQueue.make(vm)
            const ts: Array<number> = []
            for (let k = 0; k <= SAMPLES; k++) {
              const t0 = performance.now()
              for (const o of ops) yield* BindQueue.submit(q, o)
              yield* BindQueue.flush(q)
              if (k > 0) ts.push(performance.now() - t0)
              yield* BindQueue.submit(q, [VmBind.unmap(0n, 1n << 47n)])
              yield* BindQueue.flush(q)
            }
            return median(ts)
          })
        )
      const g = yield* gpuVmOf(false)
      const onGpu = yield* stream(g.vm)
      const onCpu = yield* stream(cpuVmOf(false))
      rows.push({
        name: "stream of 8 VM_BINDs of 1 GiB in 4 KiB pages (2 M PTEs), pipelined",
        value: onGpu,
        unit: "ms",
        peer: "CPU reference executor",
        peerValue: onCpu,
        ratio: onCpu / onGpu,
        goal: `report (${goal})`
      })
    }

    for (const huge of [true, false]) {
      const objs = Array.from({ length: 8 }, (_, i) => contiguous(`b${i}`, 256n * MiB, (1 << 20) + i * 65536))
      const ops = Array.from({ length: 1024 }, (_, i) =>
        VmBind.map(4n * GiB + BigInt(i) * 4n * MiB, 2n * MiB, objs[i % 8]!, BigInt(Math.floor(i / 8) % 128) * 2n * MiB)
      )
      const g = yield* gpuVmOf(huge)
      const onGpu = yield* timeBind(g.vm, ops)
      const onCpu = yield* timeBind(cpuVmOf(huge), ops)
      rows.push({
        name: `bind array 1024 x 2 MiB (ENOBUFS shape), ${huge ? "2 MiB leaves" : "4 KiB PTEs (524288)"}`,
        value: onGpu.ms,
        unit: "ms",
        peer: "CPU reference executor",
        peerValue: onCpu.ms,
        ratio: onCpu.ms / onGpu.ms,
        goal: "succeeds; report time + dispatches",
        pass: onGpu.subs === 1
      })
      rows.push({
        name: `  GPU submissions / dispatches per bind, ${huge ? "2 MiB leaves" : "4 KiB PTEs"}`,
        value: onGpu.subs,
        unit: `submission, ${onGpu.disp} dispatch(es)`
      })
    }
    report("vmBind", rows)
  })
)

await Effect.runPromise(program)
