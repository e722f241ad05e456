import { CpuPageTables } from "@drmkit/gpu"
import { Allocator, BindQueue, GpuVm, PageTables, VaSpace, Verify, type VmBind } from "@drmkit/gpuva"
import { DmaResv } from "@drmkit/resv-locking"
import { assert } from "@effect/vitest"
import { Effect } from "effect"

export const KiB = 1024n
export const MiB = 1024n * KiB
export const GiB = 1024n * MiB

/** Frames of objects start at 1 GiB so that NULL mappings (frame 0) are distinguishable. */
let nextFrame = 1 << 18

/** A contiguous object of `size` bytes; `resv` defaults to a fresh one (an external object). */
export const object = (name: string, size: bigint, resv?: DmaResv.DmaResv, align = 512): VmBind.BindObject => {
  nextFrame = Math.ceil(nextFrame / align) * align
  const baseFrame = nextFrame
  nextFrame += Number(size / 4096n)
  return { name, size, resv: resv ?? DmaResv.make(name), frames: { _tag: "Contiguous", baseFrame } }
}

/** An object with scattered pages (reversed order so nothing is contiguous). */
export const scattered = (name: string, size: bigint, resv?: DmaResv.DmaResv): VmBind.BindObject => {
  const pages = Number(size / 4096n)
  const base = nextFrame
  nextFrame += pages
  const frames = new Uint32Array(pages)
  for (let i = 0; i < pages; i++) frames[i] = base + pages - 1 - i
  return { name, size, resv: resv ?? DmaResv.make(name), frames: { _tag: "Pages", frames } }
}

export interface VmSetup {
  readonly vm: GpuVm.GpuVm<never>
  readonly cpu: CpuPageTables.CpuPageTables
  readonly allocator: Allocator.Counting
}

/** A VM of `range` bytes at `start` with CPU-reference page tables. */
export const cpuVm = (name = "vm", options: { start?: bigint; range?: bigint; tables?: number } = {}): VmSetup => {
  const tables = options.tables ?? 4096
  const cpu = new CpuPageTables.CpuPageTables(tables)
  const allocator = Allocator.counting()
  const space = VaSpace.makeUnsafe({
    name,
    start: options.start ?? 0n,
    range: options.range ?? 1n << 40n,
    pageSize: 4096n
  })
  const pageTables = PageTables.make({ tables, executor: PageTables.cpuExecutor(cpu) })
  return { vm: GpuVm.make({ space, pageTables, allocator }), cpu, allocator }
}

/** Verifies every mapped page and `unmapped` samples (invalidated VAs must fault); returns the mismatches. */
export const check = (vm: GpuVm.GpuVm<unknown>, unmapped = 64) =>
  Effect.map(Verify.verify(vm, Verify.sampleAddrs(vm.space, unmapped), { invalidated: "fault" }), (r) => r.mismatches)

/** The tree as plain tuples `[addr, range, objName | null, offset]`. */
export const tree = (vm: GpuVm.GpuVm<unknown>) =>
  [...vm.space].map((va) => [va.addr, va.range, va.obj?.name ?? null, va.offset] as const)

/** Submits `ops`, waits for the job and checks fence, translation (page tables == VA tree) and tree. */
export const bindAndCheck = (q: BindQueue.BindQueue, ops: ReadonlyArray<VmBind.BindOp>) =>
  Effect.gen(function* () {
    const job = yield* BindQueue.submit(q, ops)
    yield* BindQueue.flush(q)
    assert.isTrue(job.fence.isSignaled)
    assert.isUndefined(job.fence.error)
    assert.deepStrictEqual(yield* check(q.vm), [])
    assert.deepStrictEqual(q.vm.space.check(), [])
    return job
  })

/** Page-table entries a job writes (sum of its descriptors' counts). */
export const entriesWritten = (job: BindQueue.BindJob): number => job.plan.descriptors.reduce((s, d) => s + d.count, 0)

/** `executor` with the `run` of the n-th (1-based) prepared job replaced by `run(original, n)`. */
export const wrapRun = (
  executor: PageTables.Executor,
  run: (
    p: PageTables.Prepared,
    n: number,
    plan: Parameters<PageTables.Executor["prepare"]>[0]
  ) => Effect.Effect<void, Error>
): PageTables.Executor => {
  let n = 0
  return {
    ...executor,
    prepare: (plan) => Effect.map(executor.prepare(plan), (p) => ({ ...p, run: run(p, ++n, plan) }))
  }
}
