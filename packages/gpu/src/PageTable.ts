/**
 * The CPU shadow of a multi-level GPU page table and the planner that turns map / unmap / zap into
 * a {@link Plan}: tables to pre-allocate, tables freed after the job's fence, and the ordered
 * descriptor list. The same plan runs on the CPU reference (`CpuPageTables.apply`) and on the GPU
 * (`GpuPageTables.apply`), so the two must agree word for word.
 *
 * Models xe's two-phase bind (`xe_pt_stage_bind` → `xe_pt_commit`) and unbind
 * (`xe_pt_stage_unbind`), amdgpu's `amdgpu_vm_ptes_update` huge-leaf choice, and xe's
 * `xe_pt_zap_ptes`. The shadow is updated when a plan is made (the CPU half of commit); freed table
 * indices are only reused after {@link PageTableShadow.retire} (after the job's fence), like the
 * kernel's deferred page-table free.
 *
 * @since 0.1.0
 */
import { Invalid, NoSpace } from "@drmkit/core"
import { Effect } from "effect"
import type * as Descriptor from "./Descriptor.ts"
import { Emitter } from "./internal/emitter.ts"
import { Shadow } from "./internal/shadow.ts"
import { MAX_FRAME, MAX_HUGE_LEVEL, USER_FLAG_MASK } from "./Pte.ts"

/**
 * Backing memory of a mapping: contiguous frames (generator descriptors, huge leaves when aligned),
 * a list of scattered frames (literal descriptors), or a NULL/sparse mapping (xe `XE_PTE_NULL`).
 *
 * @since 0.1.0
 * @category planner
 */
export type Backing =
  | { readonly _tag: "Contiguous"; readonly baseFrame: number }
  | { readonly _tag: "Pages"; readonly frames: ArrayLike<number> }
  | { readonly _tag: "Null" }

/**
 * Options of {@link PageTableShadow.map}.
 *
 * @since 0.1.0
 * @category planner
 */
export interface MapOptions {
  /** Writable mapping (default true). */
  readonly writable?: boolean
  /** Extra PTE bits (within `USER_FLAG_MASK`, e.g. `PteBits.DEVICE`). */
  readonly flags?: number
  /** Allow 2M/1G leaves when range and backing are aligned (default true). */
  readonly huge?: boolean
}

/**
 * A planned page-table update. `allocated` tables must exist (they are initialised by the first
 * descriptors); `freed` tables are unlinked and may be reused only after the job's fence
 * ({@link PageTableShadow.retire}); `descriptors` is the ordered bulk update.
 *
 * @since 0.1.0
 * @category planner
 */
export interface Plan {
  readonly root: number
  readonly levels: number
  readonly allocated: ReadonlyArray<{ readonly table: number; readonly level: number }>
  readonly freed: ReadonlyArray<number>
  readonly descriptors: ReadonlyArray<Descriptor.Descriptor>
}

/**
 * One operation of a bind batch (`drm_gpuva_op` reduced to what the page table needs).
 *
 * @since 0.1.0
 * @category planner
 */
export type Op =
  | {
      readonly _tag: "Map"
      readonly va: bigint
      readonly size: bigint
      readonly backing: Backing
      readonly options?: MapOptions
    }
  | { readonly _tag: "Unmap"; readonly va: bigint; readonly size: bigint }
  | { readonly _tag: "Zap"; readonly va: bigint; readonly size: bigint }

/**
 * Construction options of a shadow.
 *
 * @since 0.1.0
 * @category planner
 */
export interface ShadowOptions {
  /** 4 (48-bit VA, shifts 12/21/30/39) or 5 (57-bit, adds 48). */
  readonly levels: 4 | 5
  /** Arena capacity in 4 KiB tables (the root is table 0). */
  readonly tables: number
  /** Scratch page frame: empty leaf entries point at it read-only instead of being zero. */
  readonly scratchFrame?: number
  /** Highest level allowed for huge leaves (default 2 = 1 GiB; 0 disables). */
  readonly maxHugeLevel?: number
}

const bad = (what: string, reason: string, value?: unknown) => new Invalid({ what, reason, value })

/**
 * The shadow + planner. Synchronous, plain class (the hot core); the Effect wrappers live in
 * {@link plan}.
 *
 * @since 0.1.0
 * @category planner
 */
export class PageTableShadow {
  readonly levels: 4 | 5
  readonly root = 0
  readonly tableCount: number
  private readonly s: Shadow
  constructor(options: ShadowOptions) {
    this.levels = options.levels
    this.tableCount = options.tables
    this.s = new Shadow(options.levels, options.tables, options.scratchFrame, options.maxHugeLevel ?? MAX_HUGE_LEVEL)
  }

  /** Size of the VA space in pages. */
  get vaPages(): number {
    return 512 ** this.levels
  }
  /** Tables allocated (live or awaiting retire). */
  get tablesInUse(): number {
    return this.s.inUse
  }
  /** Tables free for allocation right now. */
  get tablesFree(): number {
    return this.s.free.length
  }

  /** Validates an op; `undefined` when acceptable. */
  check(op: Op): Invalid | undefined {
    const max = BigInt(this.vaPages) * 4096n
    if (typeof op.va !== "bigint" || op.va < 0n || op.va % 4096n !== 0n)
      return bad("va", "must be 4 KiB aligned", op.va)
    if (typeof op.size !== "bigint" || op.size <= 0n || op.size % 4096n !== 0n) {
      return bad("size", "must be > 0 and 4 KiB aligned", op.size)
    }
    if (op.va + op.size > max) return bad("va + size", `exceeds the ${this.levels}-level VA space`, op.va + op.size)
    if (op._tag !== "Map") return undefined
    const pages = Number(op.size / 4096n)
    const f = op.options?.flags ?? 0
    if (!Number.isInteger(f) || (f & ~USER_FLAG_MASK) !== 0) return bad("flags", "outside USER_FLAG_MASK", f)
    const b = op.backing
    if (b._tag === "Contiguous") {
      if (!Number.isInteger(b.baseFrame) || b.baseFrame < 0 || b.baseFrame + pages - 1 > MAX_FRAME) {
        return bad("backing.baseFrame", "frame range outside 40 bits", b.baseFrame)
      }
    } else if (b._tag === "Pages") {
      if (b.frames.length !== pages) return bad("backing.frames", `must list ${pages} frames`, b.frames.length)
      for (let i = 0; i < pages; i++) {
        const fr = b.frames[i] as number
        if (!Number.isInteger(fr) || fr < 0 || fr > MAX_FRAME) return bad(`backing.frames[${i}]`, "bad frame", fr)
      }
    }
    return undefined
  }

  /**
   * Plans a batch of ops as ONE update (one submission, one fence): all pre-fills first, then every
   * write in op order. Fails with `Invalid` (nothing changed) or `NoSpace` when the arena cannot
   * hold the new tables (every shadow change rolled back).
   */
  planBatch(ops: ReadonlyArray<Op>): Invalid | NoSpace | Plan {
    for (const op of ops) {
      const err = this.check(op)
      if (err !== undefined) return err
    }
    const em = new Emitter()
    const s = this.s
    s.begin(em)
    for (const op of ops) {
      const start = Number(op.va / 4096n)
      const end = start + Number(op.size / 4096n)
      const ok =
        op._tag === "Map"
          ? s.map(start, end, op.backing, mapFlags(op.options), op.options?.huge !== false)
          : op._tag === "Unmap"
            ? s.unmap(start, end)
            : s.zap(start, end)
      if (!ok) {
        s.rollback()
        return new NoSpace({ what: "page-table arena", requested: s.wanted, available: s.free.length })
      }
    }
    const { allocated, freed } = s.commit()
    return { root: this.root, levels: this.levels, allocated, freed, descriptors: em.finish() }
  }

  /** Plans one mapping of `[va, va+size)` onto `backing`. */
  map(va: bigint, size: bigint, backing: Backing, options: MapOptions = {}): Invalid | NoSpace | Plan {
    return this.planBatch([{ _tag: "Map", va, size, backing, options }])
  }
  /** Plans an unmap: clears entries, splits partly covered huge leaves, frees emptied tables. */
  unmap(va: bigint, size: bigint): Invalid | NoSpace | Plan {
    return this.planBatch([{ _tag: "Unmap", va, size }])
  }
  /** Plans a zap: clears every leaf touching the range, no structural change. */
  zap(va: bigint, size: bigint): Invalid | NoSpace | Plan {
    return this.planBatch([{ _tag: "Zap", va, size }])
  }

  /** Returns a plan's freed tables to the allocator (call after its fence signalled). */
  retire(plan: Plan): void {
    this.s.retire(plan.freed)
  }
}

const mapFlags = (o: MapOptions | undefined): number => (o?.flags ?? 0) | (o?.writable === false ? 0 : 0x2)

const isPlan = (x: Invalid | NoSpace | Plan): x is Plan => !(x instanceof Invalid || x instanceof NoSpace)

/**
 * Effect form of {@link PageTableShadow.planBatch}.
 *
 * @since 0.1.0
 * @category planner
 */
export const plan = (shadow: PageTableShadow, ops: ReadonlyArray<Op>): Effect.Effect<Plan, Invalid | NoSpace> =>
  Effect.suspend(() => {
    const r = shadow.planBatch(ops)
    return isPlan(r) ? Effect.succeed(r) : Effect.fail(r)
  })

/**
 * Unwraps a synchronous planner result or throws (tests, benches).
 *
 * @since 0.1.0
 * @category planner
 */
export const orThrow = (r: Invalid | NoSpace | Plan): Plan => {
  if (isPlan(r)) return r
  throw r
}

/** Converts a page number to a VA. @since 0.1.0 @category planner */
export const vaOfPage = (page: number): bigint => BigInt(page) * 4096n
