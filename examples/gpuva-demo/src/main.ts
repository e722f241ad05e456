/**
 * `node dist/main.js`: a GPU VM whose page tables live in GPU buffers. A bind queue maps two
 * buffer objects, remaps part of one with the other (mmap-style), punches a hole (munmap-style),
 * maps a sparse NULL range and finally unbinds everything of one object. After every bind it
 * prints the VA tree and checks every mapped page (plus samples of the holes) through the WGSL
 * page-table walker on the GPU.
 */
import { GpuDevice, GpuPageTables } from "@drmkit/gpu"
import { BindQueue, GpuVa, GpuVm, PageTables, VaSpace, Verify, VmBind, VmBo } from "@drmkit/gpuva"
import { DmaResv } from "@drmkit/resv-locking"
import { Effect } from "effect"

const KiB = 1024n
const MiB = 1024n * KiB
const GiB = 1024n * MiB
const TABLES = 256

const hex = (x: bigint) => `0x${x.toString(16).padStart(9, "0")}`

const printTree = (vm: GpuVm.GpuVm<unknown>) => {
  for (const va of vm.space) {
    const b = VmBo.ofVa(va)
    const what =
      va === vm.space.reserved
        ? "(kernel-reserved)"
        : va.obj === null
          ? "NULL (sparse)"
          : GpuVa.format(va).split(") ")[1]
    const size = va.range % MiB === 0n ? `${va.range / MiB} MiB` : `${va.range / KiB} KiB`
    console.log(
      `     ${hex(va.addr)}..${hex(va.end)}  ${size.padStart(8)}  ${what}${b ? `  (vm_bo refs ${b.refs})` : ""}`
    )
  }
}

const main = Effect.scoped(
  Effect.gen(function* () {
    const gpu = yield* GpuDevice.make({ label: "gpuva-demo" })
    console.log(`drmkit gpuva demo — VM_BIND with page tables on the GPU (${gpu.adapter.description})\n`)
    const arena = yield* GpuPageTables.make(gpu, TABLES)
    const space = VaSpace.makeUnsafe({
      name: "demo-vm",
      start: 0n,
      range: 1n << 40n,
      reserveOffset: 0n,
      reserveRange: 64n * KiB,
      pageSize: 4096n
    })
    const vm = GpuVm.make({
      space,
      pageTables: PageTables.make({ tables: TABLES, executor: PageTables.gpuExecutor(arena) })
    })
    const q = yield* BindQueue.make(vm)
    const bo = (name: string, size: bigint, baseFrame: number, resv = DmaResv.make(name)): VmBind.BindObject => ({
      name,
      size,
      resv,
      frames: { _tag: "Contiguous", baseFrame }
    })
    const vram = bo("vram-bo", 8n * MiB, 0x40000)
    const sys = bo("sys-bo", 2n * MiB, 0x80000, vm.resv)

    const step = (title: string, ops: ReadonlyArray<VmBind.BindOp>) =>
      Effect.gen(function* () {
        const job = yield* BindQueue.submit(q, ops)
        yield* BindQueue.flush(q)
        const r = yield* Verify.verify(vm, Verify.sampleAddrs(vm.space, 128))
        const writes = job.plan.descriptors.reduce((n, d) => n + d.count, 0)
        console.log(`${title}`)
        console.log(
          `   job ${job.fence}: ${job.plan.descriptors.length} descriptors, ${writes} entries, one GPU submission`
        )
        printTree(vm)
        const ok = r.mismatches.length === 0
        console.log(
          `   GPU walker: ${r.checked} addresses translated, ${ok ? "all agree with the VA tree" : "MISMATCH"}\n`
        )
        if (!ok) return yield* Effect.fail(new Error(r.mismatches.join("\n")))
      })

    yield* step("1. bind 8 MiB of vram-bo at 1 GiB (2 MiB leaves) and 2 MiB of sys-bo at 2 GiB", [
      VmBind.map(GiB, 8n * MiB, vram),
      VmBind.map(2n * GiB, 2n * MiB, sys)
    ])
    yield* step("2. mmap-style: bind sys-bo over 64 KiB in the middle of vram-bo (remap: prev + next pieces)", [
      VmBind.map(GiB + 3n * MiB, 64n * KiB, sys, 64n * KiB)
    ])
    yield* step("3. munmap-style: unbind the first 4 KiB and 1 MiB at the end", [
      VmBind.unmap(GiB, 4n * KiB),
      VmBind.unmap(GiB + 7n * MiB, 1n * MiB)
    ])
    yield* step("4. sparse NULL mapping of 16 MiB at 4 GiB", [VmBind.mapNull(4n * GiB, 16n * MiB)])
    yield* step("5. unbind all mappings of sys-bo, then the NULL range", [
      VmBind.unmapAll(sys),
      VmBind.unmap(4n * GiB, 16n * MiB)
    ])
    const bad = yield* Effect.flip(BindQueue.submit(q, [VmBind.unmap(GiB, 4n * KiB), VmBind.map(0n, 4n * KiB, sys)]))
    console.log(`6. a bind array with a bad op is rejected as a whole: ${bad.message}`)
    yield* step("7. unbind everything", [VmBind.unmap(0n + 64n * KiB, (1n << 40n) - 64n * KiB)])
    console.log(
      `leftovers: ${GpuVm.leftovers(vm).join(", ") || "none"}; page tables in use: ${vm.pageTables?.shadow.tablesInUse}`
    )
  })
)

Effect.runPromise(main).catch((e) => {
  console.error(e)
  process.exitCode = 1
})
