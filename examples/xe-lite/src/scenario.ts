/**
 * The xe-lite scenario, shared by `main.ts` (which prints it) and the test (which checks it):
 *
 * 1. five BOs in VRAM — three per-VM (sharing the VM's resv), two external (own resv) — with
 *    distinct contents;
 * 2. VM_BIND: one bind array mapping them (one BO twice, one twice with different offsets), then a
 *    munmap-style hole;
 * 3. memory pressure: another client's BOs want VRAM, TTM evicts LRU victims — some of them bound:
 *    move_notify puts their vm_bos on the evict list and zaps their PTEs;
 * 4. exec in one transaction: lock VM + extobjs, validate (moved back to VRAM by TTM, evicting
 *    the client's BOs) and rebind (`BindQueue.submitLocked`), run a GPU job reading every bound BO;
 * 5. evict everything from VRAM (suspend-style `evictAll`), exec again;
 * 6. teardown: unbind all, release every BO, check for leftovers and leaks.
 *
 * After every step: GPU translation of every mapped page against the VA tree and the BOs'
 * current backing, GPU checksums of every BO, TTM invariants.
 */
import { GpuVa, GpuVm, VmBind, VmBo } from "@drmkit/gpuva"
import { DmaResv } from "@drmkit/resv-locking"
import { Access, type BufferObject, Debug, Device, Eviction, Lifecycle, Placement } from "@drmkit/ttm-placement"
import { Effect } from "effect"
import * as Check from "./Check.ts"
import * as Driver from "./Driver.ts"
import type { XeBo } from "./XeBo.ts"

const { MemType, PAGE_SIZE } = Placement
const { MiB } = Driver
const KiB = 1024n
const GiB = 1n << 30n
const bMiB = 1n << 20n

/** Where a BO is, as one line. */
export interface Placed {
  readonly name: string
  readonly where: string
  /** Bound in the VM (has a vm_bo) and on its evict list. */
  readonly bound: boolean
  readonly evicted: boolean
}

/** What one step observed. */
export interface StepReport {
  readonly title: string
  readonly placements: ReadonlyArray<Placed>
  readonly translations: Check.Translations
  /** BOs whose GPU checksum is wrong (must be none). */
  readonly damaged: ReadonlyArray<string>
  /** TTM invariant violations (must be none). */
  readonly violations: ReadonlyArray<string>
  /** TTM evictions and bytes moved during the step. */
  readonly evictions: number
  readonly bytesMoved: number
}

/** What teardown found. */
export interface Teardown {
  readonly leftovers: ReadonlyArray<string>
  readonly tablesInUse: number
  readonly leaks: ReturnType<typeof Debug.leaks>
  readonly violations: ReadonlyArray<string>
  readonly lockedResvs: number
}

/** Everything the scenario observed. */
export interface Result {
  readonly adapter: string
  readonly steps: ReadonlyArray<StepReport>
  /** Bound BOs evicted by the client's memory pressure (step 3). */
  readonly evictedByPressure: ReadonlyArray<string>
  /** External ones among them. */
  readonly externalEvicted: ReadonlyArray<string>
  /**
   * gpuva's own Verify while moved BOs were not rebound: invalidated VAs must fault (xe semantics,
   * must be 0), and the "is everything rebound?" reading (`invalidated: "current"`, > 0: the old
   * PTEs really are gone); after exec (fault reading, must be 0).
   */
  readonly gpuvaMismatchesWhileEvicted: number
  readonly gpuvaNotReboundWhileEvicted: number
  readonly gpuvaMismatchesAfterExec: number
  /** Checksums the exec jobs computed (on the GPU, under the exec's locks) that were wrong. */
  readonly execDamaged: ReadonlyArray<string>
  readonly stats: Driver.Stats
  readonly ttmStats: Device.Stats
  readonly teardown: Teardown
}

/** Options of {@link run}. */
export interface Options {
  readonly config?: Driver.Config
  /** Receives the readable log (default: discarded). */
  readonly log?: (line: string) => void
}

const pattern = (size: number, seed: number): Uint8Array => {
  const w = new Uint32Array(size / 4)
  for (let i = 0; i < w.length; i++) w[i] = Math.imul(i + 1, 2654435761) ^ Math.imul(seed, 0x9e3779b1)
  return new Uint8Array(w.buffer)
}

const where = (bo: BufferObject.Bo): string => {
  const r = bo.resource
  if (r === undefined) return "(no backing)"
  const t = ["SYSTEM", "TT", "VRAM"][r.memType] ?? `mem${r.memType}`
  const segs = r.segments.map((s) => `${((s.start * PAGE_SIZE) / MiB).toFixed(2)}`).join("+")
  return r.memType === MemType.SYSTEM ? t : `${t}@${segs} MiB`
}

const hex = (x: bigint) => `0x${x.toString(16).padStart(9, "0")}`

/** The VA tree, one line per VA. */
export const formatTree = (d: Driver.XeLite): Array<string> =>
  [...d.vm.space].map((va) => {
    if (va === d.vm.space.reserved) return `${hex(va.addr)}..${hex(va.end)}  (kernel-reserved)`
    const size = va.range % bMiB === 0n ? `${va.range / bMiB} MiB` : `${va.range / KiB} KiB`
    const obj = va.obj as XeBo | null
    const kind = obj === null ? "NULL" : obj.external ? "extobj" : "per-VM"
    const inv = (va.flags & GpuVa.Flags.Invalidated) !== 0 ? "  INVALIDATED (zapped)" : ""
    return `${hex(va.addr)}..${hex(va.end)}  ${size.padStart(8)}  ${obj?.name ?? "-"}+0x${va.offset.toString(16)} (${kind})${inv}`
  })

/** Runs the scenario on a fresh driver instance (opened and closed inside). */
export const run = (options: Options = {}): Effect.Effect<Result> =>
  Effect.scoped(
    Effect.gen(function* () {
      const log = options.log ?? (() => {})
      const d = yield* Driver.make(options.config ?? Driver.defaultConfig)
      const adapter = `${d.gpu.adapter.backend} ${d.gpu.adapter.description}`.trim()
      const expected = new Map<BufferObject.Bo, number>()
      const objs: Array<XeBo> = []
      const steps: Array<StepReport> = []

      const placements = (): Array<Placed> =>
        [...expected.keys()].map((bo) => {
          const obj = d.objects.get(bo)
          const vmBo = obj === undefined ? undefined : VmBo.peek(d.vm, obj)
          return { name: bo.name, where: where(bo), bound: vmBo !== undefined, evicted: vmBo?.evicted === true }
        })
      const step = <A, E>(title: string, eff: Effect.Effect<A, E>) =>
        Effect.gen(function* () {
          log(title)
          const before = new Map(placements().map((p) => [p.name, p.where]))
          const ev0 = d.ttm.stats.evictions
          const moved0 = d.ttm.stats.bytesMoved
          const value = yield* eff
          yield* Driver.awaitZaps(d)
          const now = placements()
          for (const p of now) {
            const was = before.get(p.name)
            if (was !== p.where) log(`   ${p.name.padEnd(8)} ${(was ?? "new").padEnd(22)} -> ${p.where}`)
          }
          const t = yield* Check.translations(d)
          const bad = yield* Check.damaged(d, expected)
          const violations = Debug.violations(d.ttm)
          const report: StepReport = {
            title,
            placements: now,
            translations: t,
            damaged: bad,
            violations,
            evictions: d.ttm.stats.evictions - ev0,
            bytesMoved: d.ttm.stats.bytesMoved - moved0
          }
          steps.push(report)
          const evicted = now.filter((p) => p.evicted).map((p) => p.name)
          log(
            `   VM evict list: ${evicted.length === 0 ? "empty" : evicted.join(", ")}; ` +
              `TTM: ${report.evictions} evictions, ${report.bytesMoved / MiB} MiB moved`
          )
          log(
            `   GPU walker: ${t.checked} addresses — ${t.vram} pages -> VRAM, ${t.tt} -> TT, ${t.zapped} zapped (fault); ` +
              `${t.mismatches.length === 0 ? "all agree with the VA tree + current backing" : `MISMATCH: ${t.mismatches.join("; ")}`}`
          )
          log(
            `   GPU checksums: ${expected.size - bad.length}/${expected.size} BOs intact; ` +
              `${violations.length === 0 ? "TTM invariants hold" : `VIOLATIONS: ${violations.join("; ")}`}\n`
          )
          return value
        })
      const newBo = (name: string, size: number, seed: number, vmPrivate: boolean) =>
        Effect.gen(function* () {
          const data = pattern(size, seed)
          const obj = yield* Driver.createBo(d, name, data, { vmPrivate })
          expected.set(obj.bo, Access.checksumOf(data))
          return obj
        })
      const execJob = (locks: GpuVm.Locks) =>
        Effect.gen(function* () {
          const wrong: Array<string> = []
          for (const o of objs) {
            const sum = yield* Access.checksum(GpuVm.heldOfObject(d.vm, locks, o), o.bo)
            if (sum !== expected.get(o.bo)) wrong.push(o.name)
          }
          return wrong
        })

      log(`xe-lite on ${adapter}`)
      log(
        `VRAM ${(options.config ?? Driver.defaultConfig).vramBytes / MiB} MiB (buddy), TT ${(options.config ?? Driver.defaultConfig).ttBytes / MiB} MiB (range); ` +
          `page tables on the same GPU; VM of 1 TiB with 4 KiB pages\n`
      )

      // 1. BOs
      const [a, x, b, y, c] = yield* step(
        "1. create BOs in VRAM: vm-a, vm-b, vm-c per-VM (share the VM's resv), ext-x, ext-y external (own resv)",
        Effect.all([
          newBo("vm-a", 2 * MiB, 1, true),
          newBo("ext-x", 1 * MiB, 2, false),
          newBo("vm-b", 2 * MiB, 3, true),
          newBo("ext-y", 1 * MiB, 4, false),
          newBo("vm-c", 1 * MiB, 5, true)
        ])
      )
      objs.push(a, x, b, y, c)

      // 2. VM_BIND
      yield* step(
        "2. VM_BIND one array: vm-a at 1 GiB (2 MiB leaf), vm-b split over 2 GiB and 3 GiB, vm-c, ext-x twice, ext-y",
        Driver.bind(d, [
          VmBind.map(GiB, 2n * bMiB, a),
          VmBind.map(2n * GiB, bMiB, b),
          VmBind.map(3n * GiB, bMiB, b, bMiB),
          VmBind.map(4n * GiB, bMiB, c),
          VmBind.map(5n * GiB, bMiB, x),
          VmBind.map(5n * GiB + 2n * bMiB, 64n * KiB, x),
          VmBind.map(6n * GiB, bMiB, y)
        ])
      )
      yield* step(
        "   munmap-style hole: unbind 64 KiB in the middle of vm-a (remap into two pieces)",
        Driver.bind(d, [VmBind.unmap(GiB + bMiB, 64n * KiB)])
      )
      for (const line of formatTree(d)) log(`     ${line}`)
      log(`   extobjs: ${[...d.vm.extobjs].map((v) => v.obj.name).join(", ")}\n`)

      // 3. memory pressure
      const zaps0 = d.stats.zappedVas
      yield* step(
        "3. memory pressure: another client creates 2 × 2 MiB BOs in VRAM; TTM evicts LRU victims to TT — move_notify marks bound ones evicted and zaps their VAs",
        Effect.all([newBo("client0", 2 * MiB, 6, false), newBo("client1", 2 * MiB, 7, false)])
      )
      const evictedByPressure = [...d.vm.evicted].map((v) => v.obj.name)
      const externalEvicted = [...d.vm.evicted].filter((v) => (v.obj as XeBo).external).map((v) => v.obj.name)
      for (const line of formatTree(d)) log(`     ${line}`)
      const gpuvaMismatchesWhileEvicted = yield* Check.gpuvaMismatches(d, "fault")
      const gpuvaNotReboundWhileEvicted = yield* Check.gpuvaMismatches(d, "current")
      log(
        `   ${d.stats.zappedVas - zaps0} VAs zapped in ${d.stats.zapJobs} page-table job(s) on the shared GPU queue; ` +
          `gpuva's Verify: ${gpuvaMismatchesWhileEvicted} mismatches (invalidated VAs fault), ` +
          `${gpuvaNotReboundWhileEvicted} addresses not rebound yet\n`
      )

      // 4. exec
      const execDamaged: Array<string> = []
      yield* step(
        "4. exec in ONE drm_exec: lock VM + extobjs, submitLocked(validate -> TTM validate back to VRAM evicting the client's BOs, rebind), run a GPU job reading every bound BO",
        Effect.map(Driver.exec(d, execJob), (wrong) => void execDamaged.push(...wrong))
      )
      for (const line of formatTree(d)) log(`     ${line}`)
      const gpuvaMismatchesAfterExec = yield* Check.gpuvaMismatches(d)
      log(
        `   ${d.stats.vmBoValidates} vm_bo validates, ${d.stats.rebindVas} VAs rebound in ${d.stats.rebindJobs} bind job(s); ` +
          `exec job checksums: ${execDamaged.length === 0 ? "all correct" : `WRONG: ${execDamaged.join(", ")}`}; gpuva Verify: ${gpuvaMismatchesAfterExec} mismatches\n`
      )

      // 5. evict everything, exec again
      yield* step(
        "5. suspend-style: evict everything from VRAM (evictAll) — every bound BO is evicted and zapped",
        Eviction.evictAll(d.ttm, MemType.VRAM)
      )
      yield* step(
        "   exec again: everything bound is validated back into VRAM and rebound",
        Effect.map(Driver.exec(d, execJob), (wrong) => void execDamaged.push(...wrong))
      )

      // 6. teardown
      log("6. teardown: unbind everything, release every BO")
      yield* Driver.bind(d, [VmBind.unmap(64n * KiB, (1n << 40n) - 64n * KiB)])
      const leftovers = GpuVm.leftovers(d.vm)
      const tablesInUse = d.pt.shadow.tablesInUse
      const resvs = new Set<DmaResv.DmaResv>([d.vm.resv, ...[...expected.keys()].map((bo) => bo.resv)])
      const lockedResvs = [...resvs].filter((r) => DmaResv.isLocked(r)).length
      for (const bo of expected.keys()) yield* Lifecycle.release(bo)
      yield* Driver.awaitZaps(d)
      yield* Device.drain(d.ttm)
      yield* Lifecycle.flushDelayed(d.ttm)
      const teardown: Teardown = {
        leftovers,
        tablesInUse,
        leaks: Debug.leaks(d.ttm),
        violations: Debug.violations(d.ttm),
        lockedResvs
      }
      log(
        `   VM leftovers: ${leftovers.length === 0 ? "none" : leftovers.join(", ")}; page tables in use: ${tablesInUse} (the root); ` +
          `locked resvs: ${lockedResvs}; TTM leaks: ${JSON.stringify(teardown.leaks)}`
      )
      const s = d.stats
      log(
        `totals: ${d.ttm.stats.evictions} TTM evictions (${s.boundEvictions} of bound BOs), ${s.vmBosEvicted} vm_bos evicted, ` +
          `${s.zappedVas} VAs zapped in ${s.zapJobs} jobs, ${s.vmBoValidates} vm_bo validates, ${s.rebindVas} VAs rebound in ${s.rebindJobs} jobs, ` +
          `${s.execs} execs, ${d.ttm.stats.bytesMoved / MiB} MiB moved`
      )
      return {
        adapter,
        steps,
        evictedByPressure,
        externalEvicted,
        gpuvaMismatchesWhileEvicted,
        gpuvaNotReboundWhileEvicted,
        gpuvaMismatchesAfterExec,
        execDamaged,
        stats: { ...d.stats },
        ttmStats: { ...d.ttm.stats },
        teardown
      }
    })
  ).pipe(Effect.orDie)
