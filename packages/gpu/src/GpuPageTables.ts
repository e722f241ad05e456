/**
 * Page-table arena in GPU storage buffers, written and walked by WGSL compute kernels. Models the
 * data half of xe's bind commit (`xe_migrate_update_pgtables`: one job storing every staged entry,
 * returning one fence) and amdgpu's SDMA PTE update backend (generator + literal commands).
 *
 * The arena is `tables` 4 KiB tables, split into segments of at most one storage binding each
 * (table `t` lives in segment `t / tablesPerSegment`). It starts zeroed, like the CPU reference.
 *
 * @since 0.1.0
 */
import { Invalid, type NoSpace } from "@drmkit/core"
import { Effect } from "effect"
import * as Descriptor from "./Descriptor.ts"
import * as GpuBuffer from "./GpuBuffer.ts"
import type { GpuDeviceShape } from "./GpuDevice.ts"
import { awaitFence } from "./GpuDevice.ts"
import type { DeviceLost, GpuError } from "./GpuErrors.ts"
import { stage, writeRuns } from "./internal/direct.ts"
import type { Fence } from "./internal/fence.ts"
import { asHandle, bindGroup, dispatch, JobBuffers, pipeline } from "./internal/jobs.ts"
import { applySource, translateSource, WG } from "./internal/wgsl/pagetable.ts"
import type { PageTableShadow, Plan } from "./PageTable.ts"
import * as PageTable from "./PageTable.ts"
import { ENTRIES_PER_TABLE, TABLE_BYTES } from "./Pte.ts"

/**
 * A submitted GPU job: its `dma_fence`, or why nothing was submitted.
 *
 * @since 0.1.0
 * @category models
 */
export type Job = Effect.Effect<Fence, Invalid | DeviceLost | GpuError>

/**
 * A GPU page-table arena.
 *
 * @since 0.1.0
 * @category models
 */
export interface GpuPageTables {
  readonly gpu: GpuDeviceShape
  readonly tableCount: number
  readonly tablesPerSegment: number
  readonly segments: ReadonlyArray<GpuBuffer.GpuBuffer>
  readonly limits: Descriptor.BatchLimits
}

/**
 * Batch limits of a device: one workgroup per descriptor (≤ workgroups per dimension), literals
 * and descriptor records each within one storage binding.
 *
 * @since 0.1.0
 * @category batching
 */
export const limitsOf = (gpu: GpuDeviceShape): Descriptor.BatchLimits => {
  const l = gpu.device.limits
  return {
    maxDescriptorsPerDispatch: Math.min(
      l.maxComputeWorkgroupsPerDimension,
      Math.floor(l.maxStorageBufferBindingSize / (4 * Descriptor.DESCRIPTOR_WORDS))
    ),
    maxLiteralEntriesPerDispatch: Math.floor(l.maxStorageBufferBindingSize / 8)
  }
}

/**
 * Allocates an arena of `tables` tables (scoped; buffers destroyed on close).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (gpu: GpuDeviceShape, tables: number, options: { readonly tablesPerSegment?: number } = {}) =>
  Effect.gen(function* () {
    const l = gpu.device.limits
    const maxTps = Math.floor(Math.min(l.maxStorageBufferBindingSize, l.maxBufferSize) / TABLE_BYTES)
    const tps = Math.min(options.tablesPerSegment ?? maxTps, maxTps)
    if (!Number.isSafeInteger(tables) || tables < 1) {
      return yield* new Invalid({ what: "arena tables", reason: "must be a positive integer", value: tables })
    }
    if (!Number.isSafeInteger(tps) || tps < 1) {
      return yield* new Invalid({ what: "tablesPerSegment", reason: "must be a positive integer", value: tps })
    }
    const count = Math.ceil(tables / tps)
    if (count + 3 > l.maxStorageBuffersPerShaderStage) {
      return yield* new Invalid({
        what: "arena tables",
        reason: "needs more storage bindings than allowed",
        value: tables
      })
    }
    const segments: Array<GpuBuffer.GpuBuffer> = []
    for (let s = 0; s < count; s++) {
      const n = Math.min(tps, tables - s * tps)
      segments.push(yield* GpuBuffer.makeWith(gpu, { size: n * TABLE_BYTES, label: `pt-arena-${s}` }))
    }
    const pt: GpuPageTables = { gpu, tableCount: tables, tablesPerSegment: tps, segments, limits: limitsOf(gpu) }
    return pt
  })

/** Kernel shape for this device: blocked on CPU rasterisers, strided (coalesced) on GPUs. */
const applyPipeline = (pt: GpuPageTables) => {
  const layout = pt.gpu.adapter.software ? "blocked" : "strided"
  return pipeline(
    pt.gpu.device,
    `pt-apply-${layout}-${pt.segments.length}-${pt.tablesPerSegment}`,
    applySource(pt.segments.length, pt.tablesPerSegment, layout),
    "apply"
  )
}
const translatePipeline = (pt: GpuPageTables) =>
  pipeline(
    pt.gpu.device,
    `pt-translate-${pt.segments.length}-${pt.tablesPerSegment}`,
    translateSource(pt.segments.length, pt.tablesPerSegment),
    "translate"
  )

/**
 * Validates a descriptor list against the arena; `undefined` when every descriptor is acceptable.
 *
 * @since 0.1.0
 * @category validation
 */
export const check = (pt: GpuPageTables, descs: ReadonlyArray<Descriptor.Descriptor>): Invalid | undefined => {
  for (const d of descs) {
    const err = Descriptor.check(d, pt.tableCount)
    if (err !== undefined) return err
  }
  return undefined
}

/**
 * A bulk update made ready for submission: its descriptor records and kernel literals already sit
 * in GPU buffers and its bind groups are built, so `submit` only encodes and submits (cannot fail for
 * lack of memory). Models xe sub-allocating the PT-update batch before the point of no return of a
 * bind; `release` drops the buffers of a job that is abandoned instead.
 *
 * Literal runs that no earlier descriptor overlaps are not copied by the kernel: `submit` writes
 * them straight into the arena with `queue.writeBuffer`, ordered before the job's dispatches (the
 * way amdgpu copies precomputed PTEs with SDMA). Their `values` arrays are read at submit time, so
 * they must stay unchanged until then. `dispatches` counts only the compute dispatches; `writes`
 * counts those queue writes (runs contiguous in table memory are coalesced into one).
 *
 * @since 0.1.0
 * @category kernels
 */
export interface Prepared {
  readonly dispatches: number
  readonly writes: number
  readonly submit: Effect.Effect<Fence, DeviceLost | GpuError>
  readonly release: () => void
}

/**
 * Validates and stages an ordered descriptor list (see {@link Prepared}). Invalid input →
 * `Invalid`, nothing allocated.
 *
 * @since 0.1.0
 * @category kernels
 */
export const prepare = (
  pt: GpuPageTables,
  descs: ReadonlyArray<Descriptor.Descriptor>,
  label = "pt-update"
): Effect.Effect<Prepared, Invalid | DeviceLost | GpuError> =>
  Effect.suspend((): Effect.Effect<Prepared, Invalid | DeviceLost | GpuError> => {
    const err = check(pt, descs)
    if (err !== undefined) return Effect.fail(err)
    return pt.gpu.check.pipe(
      Effect.map((): Prepared => {
        const { writes, kernel } = stage(descs, pt.tablesPerSegment)
        const ranges = Descriptor.split(kernel, pt.limits)
        const res = new JobBuffers(pt.gpu)
        const p = applyPipeline(pt)
        const passes = ranges.map((r) => {
          const { records, literals } = Descriptor.encode(kernel, r)
          const bg = bindGroup(pt.gpu.device, p, [
            ...pt.segments.map((s) => s.buffer),
            res.storage(records, "pt-descs"),
            res.storage(literals, "pt-literals")
          ])
          return { bg, groups: r.end - r.start }
        })
        let used = false
        const submit = Effect.suspend(() => {
          if (used) return Effect.die(new Error("GpuPageTables.Prepared submitted twice"))
          used = true
          return pt.gpu
            .submit(label, (enc) => {
              writeRuns(
                pt.gpu.device.queue,
                pt.segments.map((s) => s.buffer),
                writes
              )
              for (const x of passes) dispatch(enc, p, x.bg, x.groups)
            })
            .pipe(
              Effect.tap((fence) => Effect.sync(() => res.releaseAfter(fence))),
              Effect.tapError(() => Effect.sync(() => res.destroyNow()))
            )
        })
        return { dispatches: ranges.length, writes: writes.length, submit, release: () => res.destroyNow() }
      })
    )
  })

/**
 * Applies an ordered descriptor list as ONE job (one submission, one fence), split into as few
 * dispatches as the limits and intra-dispatch overlaps allow. Invalid input → `Invalid`, nothing
 * submitted.
 *
 * @since 0.1.0
 * @category kernels
 */
export const applyDescriptors = (
  pt: GpuPageTables,
  descs: ReadonlyArray<Descriptor.Descriptor>,
  label = "pt-update"
): Effect.Effect<Fence, Invalid | DeviceLost | GpuError> =>
  prepare(pt, descs, label).pipe(Effect.flatMap((job) => job.submit))

/**
 * Applies a plan (the data half of a bind/unbind commit) and returns its fence.
 *
 * @since 0.1.0
 * @category kernels
 */
export const apply = (pt: GpuPageTables, plan: Plan): Job => applyDescriptors(pt, plan.descriptors, "pt-bind")

/**
 * Number of compute dispatches a descriptor list needs on this arena's device (literal runs written
 * straight into the arena, see {@link Prepared}, need none).
 *
 * @since 0.1.0
 * @category batching
 */
export const dispatchCount = (pt: GpuPageTables, descs: ReadonlyArray<Descriptor.Descriptor>): number =>
  Descriptor.split(stage(descs, pt.tablesPerSegment).kernel, pt.limits).length

/**
 * Range invalidate/clear: writes `count` copies of one entry (`frame`, `flags`; zero clears, a
 * scratch frame makes scratch entries) starting at entry `first` of `table`, crossing into the
 * following tables as needed (one descriptor per table), as one job.
 *
 * @since 0.1.0
 * @category kernels
 */
export const invalidate = (
  pt: GpuPageTables,
  table: number,
  first: number,
  count: number,
  frame = 0,
  flags = 0
): Job => {
  const room = (pt.tableCount - table) * ENTRIES_PER_TABLE - first
  const ok = [table, first, count].every(Number.isSafeInteger) && table >= 0 && first >= 0 && first < ENTRIES_PER_TABLE
  if (!ok || count < 1 || count > room) {
    return Effect.fail(
      new Invalid({
        what: "invalidate range",
        reason: `table/first/count outside the arena (${room} entries left)`,
        value: count
      })
    )
  }
  const descs: Array<Descriptor.Descriptor> = []
  let t = table
  let e = first
  let left = count
  while (left > 0) {
    const n = Math.min(left, ENTRIES_PER_TABLE - e)
    descs.push(Descriptor.fill(t, e, n, frame, flags))
    left -= n
    t++
    e = 0
  }
  return applyDescriptors(pt, descs, "pt-invalidate")
}

/**
 * Translates a batch of VAs (lo/hi pairs) by walking the tables on the GPU; same output format as
 * `CpuPageTables.translate` (PA pair, or `[level, FAULT]`).
 *
 * @since 0.1.0
 * @category kernels
 */
export const translate = (pt: GpuPageTables, root: number, levels: number, vas: Uint32Array) =>
  Effect.gen(function* () {
    if (vas.length % 2 !== 0 || vas.length === 0) {
      return yield* new Invalid({ what: "vas", reason: "must be a non-empty list of lo/hi pairs", value: vas.length })
    }
    if (!Number.isInteger(root) || root < 0 || root >= pt.tableCount || (levels !== 4 && levels !== 5)) {
      return yield* new Invalid({ what: "translate root/levels", reason: "bad root table or level count", value: root })
    }
    const gpu = pt.gpu
    const p = translatePipeline(pt)
    const maxVas = Math.floor(gpu.device.limits.maxStorageBufferBindingSize / 8)
    const out = new Uint32Array(vas.length)
    for (let first = 0; first < vas.length / 2; first += maxVas) {
      const n = Math.min(maxVas, vas.length / 2 - first)
      const res = new JobBuffers(gpu)
      const groups = Math.min(Math.ceil(n / WG), gpu.device.limits.maxComputeWorkgroupsPerDimension)
      const outBuf = res.empty(n * 8, "translate-out")
      const bg = bindGroup(gpu.device, p, [
        ...pt.segments.map((s) => s.buffer),
        res.storage(vas.subarray(first * 2, (first + n) * 2), "translate-vas"),
        outBuf,
        res.uniform([n, root, levels, groups * WG], "translate-params")
      ])
      const words = yield* gpu
        .submit("pt-translate", (enc) => dispatch(enc, p, bg, groups))
        .pipe(
          Effect.andThen(GpuBuffer.downloadU32(gpu, asHandle(outBuf, outBuf.size, "translate-out"), 0, n * 8)),
          Effect.ensuring(Effect.sync(() => res.destroyNow()))
        )
      out.set(words, first * 2)
    }
    return out
  })

/**
 * Downloads the whole arena (all segments, concatenated) for comparisons with the CPU reference.
 *
 * @since 0.1.0
 * @category debugging
 */
export const read = (pt: GpuPageTables) =>
  Effect.gen(function* () {
    const out = new Uint32Array(pt.tableCount * 1024)
    let o = 0
    for (const s of pt.segments) {
      const w = yield* GpuBuffer.downloadU32(pt.gpu, s)
      out.set(w, o)
      o += w.length
    }
    return out
  })

/**
 * Zap (xe `xe_pt_zap_ptes`): plans the clearing of every leaf touching `[va, va+size)` on the
 * shadow (no structural change) and runs it through the bulk kernel as one job. The fence is the
 * point after which the GPU can no longer translate through the zapped leaves.
 *
 * @since 0.1.0
 * @category kernels
 */
export const zap = (
  pt: GpuPageTables,
  shadow: PageTableShadow,
  va: bigint,
  size: bigint
): Effect.Effect<Fence, Invalid | NoSpace | DeviceLost | GpuError> =>
  PageTable.plan(shadow, [{ _tag: "Zap", va, size }]).pipe(Effect.flatMap((p) => apply(pt, p)))

/**
 * Applies and waits (convenience for tests and CPU-side callers).
 *
 * @since 0.1.0
 * @category kernels
 */
export const applyAndWait = (pt: GpuPageTables, plan: Plan): Job =>
  apply(pt, plan).pipe(Effect.tap((f: Fence) => awaitFence(f)))
