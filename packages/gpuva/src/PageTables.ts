/**
 * A VM's GPU page tables: the CPU shadow/planner of `@drmkit/gpu` plus an executor that applies a
 * plan's descriptors as ONE submission — on the GPU (the WGSL walker) or on the CPU reference.
 *
 * Models the split xe makes between `xe_pt_stage_bind()` / `xe_pt_commit()` (CPU side, at submit
 * time: decide which tables to allocate and which entries to write) and
 * `xe_migrate_update_pgtables()` (the data side: one job writing every staged entry of a bind).
 * The planner allocates page-table pages from the arena when the plan is made; freed tables are
 * only reused after the job's fence ({@link VmPageTables.retire}), like xe's deferred PT free.
 *
 * @since 0.1.0
 */
import { type CpuPageTables, GpuDevice, GpuPageTables, PageTable, Pte } from "@drmkit/gpu"
import { Effect } from "effect"

/**
 * A page-table update staged at submit time: `run` writes it as ONE submission and waits for it
 * (the job's data half, run in the fence-signalling path — it allocates nothing); `release` drops
 * the staging of a job that is abandoned instead.
 *
 * @since 0.1.0
 * @category models
 */
export interface Prepared {
  readonly dispatches: number
  readonly run: Effect.Effect<void, Error>
  readonly release: () => void
}

/**
 * Applies plans to page-table memory and translates addresses through it: the update backend
 * (xe `xe_migrate_update_pgtables()` / amdgpu's `amdgpu_vm_update_funcs` CPU or SDMA).
 *
 * @since 0.1.0
 * @category models
 */
export interface Executor {
  readonly name: string
  /**
   * Stages every descriptor of `plan` for one submission (uploads, bind groups): called at submit
   * time, before the point of no return, so that runJob only submits.
   */
  readonly prepare: (plan: PageTable.Plan) => Effect.Effect<Prepared, Error>
  /** Walks the tables for each VA (pairs lo/hi): pairs `[paLo, paHi]` or `[level, Pte.FAULT]`. */
  readonly translate: (root: number, levels: number, vas: Uint32Array) => Effect.Effect<Uint32Array, Error>
  /** Submissions run so far. */
  readonly submissions: () => number
  /** Dispatches (GPU compute passes) run so far; equals submissions on the CPU. */
  readonly dispatches: () => number
}

/**
 * The CPU reference executor over a `CpuPageTables` arena (validates at prepare time, writes at
 * run time).
 *
 * @since 0.1.0
 * @category constructors
 */
export const cpuExecutor = (tables: CpuPageTables.CpuPageTables): Executor => {
  let n = 0
  return {
    name: "cpu",
    prepare: (plan) =>
      Effect.sync(
        (): Prepared => ({
          dispatches: 1,
          run: Effect.suspend(() => {
            n += 1
            const err = tables.apply(plan)
            return err === undefined ? Effect.void : Effect.fail(new Error(err.message))
          }),
          release: () => {}
        })
      ),
    translate: (root, levels, vas) => Effect.sync(() => tables.translate(root, levels, vas)),
    submissions: () => n,
    dispatches: () => n
  }
}

/**
 * The GPU executor: `prepare` stages the plan with `GpuPageTables.prepare` (descriptor records and
 * literals uploaded, bind groups built — xe sub-allocating its PT-update batch before the point of
 * no return); `run` submits it as ONE job of the WGSL bulk-update kernel (as few dispatches as the
 * device limits allow) and awaits its fence. Translation runs the WGSL walker.
 *
 * @since 0.1.0
 * @category constructors
 */
export const gpuExecutor = (tables: GpuPageTables.GpuPageTables): Executor => {
  let n = 0
  let d = 0
  return {
    name: "gpu",
    prepare: (plan) =>
      Effect.map(
        GpuPageTables.prepare(tables, plan.descriptors, "pt-bind"),
        (p): Prepared => ({
          dispatches: p.dispatches,
          run: Effect.suspend(() => {
            n += 1
            d += p.dispatches
            return p.submit.pipe(Effect.flatMap(GpuDevice.awaitFence))
          }),
          release: p.release
        })
      ),
    translate: (root, levels, vas) => GpuPageTables.translate(tables, root, levels, vas),
    submissions: () => n,
    dispatches: () => d
  }
}

/**
 * Options of {@link make}.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** 4 (48-bit) or 5 (57-bit) levels; default 4. */
  readonly levels?: 4 | 5
  /** Arena capacity in 4 KiB tables. */
  readonly tables: number
  /** Highest huge-leaf level (default 2 = 1 GiB; 0 disables huge leaves). */
  readonly maxHugeLevel?: number
  readonly executor: Executor
}

/**
 * A VM's page tables (xe `vm->pt_root` and its `xe_pt` tree, as `@drmkit/gpu`'s shadow).
 *
 * @since 0.1.0
 * @category models
 */
export class VmPageTables {
  readonly shadow: PageTable.PageTableShadow
  readonly executor: Executor
  /** Level of every table ever allocated (root included), from the plans' `allocated` lists. */
  private readonly levelOf = new Map<number, number>()
  constructor(options: Options) {
    const levels = options.levels ?? 4
    this.shadow = new PageTable.PageTableShadow({
      levels,
      tables: options.tables,
      ...(options.maxHugeLevel === undefined ? {} : { maxHugeLevel: options.maxHugeLevel })
    })
    this.executor = options.executor
    this.levelOf.set(this.shadow.root, levels - 1)
  }

  get levels(): number {
    return this.shadow.levels
  }
  /** Size of the addressable space in bytes. */
  get vaLimit(): bigint {
    return BigInt(this.shadow.vaPages) * 4096n
  }

  /**
   * Plans a whole bind array as one update; records table levels. `NoSpace` / `Invalid` leave the
   * shadow unchanged.
   */
  plan(ops: ReadonlyArray<PageTable.Op>): ReturnType<PageTable.PageTableShadow["planBatch"]> {
    const r = this.shadow.planBatch(ops)
    if ("descriptors" in r) for (const a of r.allocated) this.levelOf.set(a.table, a.level)
    return r
  }

  /**
   * The highest level whose entries the plan writes: the range fence of its job must cover whole
   * entries of that level, so that structural writes (a directory entry pointing at a new or freed
   * table) are ordered against every job touching the same entry (xe rounds its range fences the
   * same way).
   */
  topLevel(plan: PageTable.Plan): number {
    let top = 0
    for (const d of plan.descriptors) top = Math.max(top, this.levelOf.get(d.table) ?? this.levels - 1)
    return top
  }

  /** Returns a finished plan's freed tables to the arena (after its fence signalled). */
  retire(plan: PageTable.Plan): void {
    this.shadow.retire(plan)
  }

  /** Translates byte addresses; `undefined` for a faulting address. */
  translate(vas: ReadonlyArray<bigint>): Effect.Effect<ReadonlyArray<bigint | undefined>, Error> {
    const words = new Uint32Array(vas.length * 2)
    vas.forEach((va, i) => {
      const [lo, hi] = Pte.splitU64(va)
      words[2 * i] = lo
      words[2 * i + 1] = hi
    })
    return Effect.map(this.executor.translate(this.shadow.root, this.levels, words), (out) =>
      vas.map((_, i) => {
        const lo = out[2 * i] ?? 0
        const hi = out[2 * i + 1] ?? 0
        return hi === Pte.FAULT ? undefined : Pte.joinU64(lo, hi)
      })
    )
  }
}

/**
 * Creates a VM's page tables (xe `xe_pt_create()` of the root, `xe_vm_create()`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options): VmPageTables => new VmPageTables(options)

/**
 * Worst-case number of page-table pages a map or unmap of `pages` 4 KiB pages may need: at every
 * level above the leaves, one table per started span plus one for a misaligned end (splitting a
 * huge leaf costs the same). Reserved at submit time, before planning.
 *
 * @since 0.1.0
 * @category planning
 */
export const worstCaseTables = (pages: bigint, levels: number): number => {
  let total = 0n
  for (let l = 1; l < levels; l++) {
    const span = 512n ** BigInt(l)
    total += (pages + span - 1n) / span + 1n
  }
  return Number(total)
}
