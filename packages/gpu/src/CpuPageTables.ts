/**
 * The CPU reference: page-table arena memory in a `Uint32Array`, with exactly the semantics of the
 * WGSL kernels (bulk descriptor apply, translate). Models the CPU update backend of both drivers
 * (`amdgpu_vm_cpu_update`, xe's CPU bind path in `xe_migrate_update_pgtables`): the same staged
 * writes, applied by the CPU instead of a GPU job.
 *
 * @since 0.1.0
 */
import type { Invalid } from "@drmkit/core"
import * as Descriptor from "./Descriptor.ts"
import type { Plan } from "./PageTable.ts"
import {
  ENTRIES_PER_TABLE,
  encoder,
  FAULT,
  FLAG_MASK,
  FRAME_SHIFT,
  HI_FRAME_MASK,
  LEVEL_SHIFTS,
  LO_FRAME_BITS,
  PteBits,
  WORDS_PER_TABLE
} from "./Pte.ts"

/** The shared PTE encoder, as closures V8 inlines in the hot loops below (see `Pte.encoder`). */
const { lo, hi } = encoder()
/** Module-local copies of the PTE constants for the translate loop (same reason). */
const SHIFT = FRAME_SHIFT
const FLAGS = FLAG_MASK
const HI_MASK = HI_FRAME_MASK
const LO_LIMIT = 2 ** LO_FRAME_BITS

/**
 * A page-table arena held in CPU memory.
 *
 * @since 0.1.0
 * @category models
 */
export class CpuPageTables {
  /** Arena words: table `t`, entry `e` lives at `[t·1024 + 2e]` (lo) and `[+1]` (hi). */
  readonly memory: Uint32Array
  readonly tableCount: number
  constructor(tableCount: number) {
    this.tableCount = tableCount
    this.memory = new Uint32Array(tableCount * WORDS_PER_TABLE)
  }

  /**
   * Applies an ordered descriptor list (later descriptors win). Validates everything first, so a
   * bad list changes nothing.
   */
  applyDescriptors(descs: ReadonlyArray<Descriptor.Descriptor>): Invalid | undefined {
    for (const d of descs) {
      const err = Descriptor.check(d, this.tableCount)
      if (err !== undefined) return err
    }
    for (const d of descs) writeDescriptor(this.memory, d)
    return undefined
  }

  /** Applies a plan's descriptors (the data half of a commit). */
  apply(plan: Plan): Invalid | undefined {
    return this.applyDescriptors(plan.descriptors)
  }

  /** Walks the tables from `root` for each VA (pairs lo/hi in `vas`); see {@link translate}. */
  translate(root: number, levels: number, vas: Uint32Array): Uint32Array {
    return translate(this.memory, root, levels, vas)
  }
}

/**
 * Writes one descriptor into arena memory (no validation).
 *
 * @since 0.1.0
 * @category kernels
 */
export const writeDescriptor = (mem: Uint32Array, d: Descriptor.Descriptor): void => {
  let o = d.table * WORDS_PER_TABLE + d.first * 2
  const s = d.source
  if (s._tag === "Literal") {
    mem.set(s.values, o)
    return
  }
  const flags = s.flags
  let frame = s.baseFrame
  const inc = s.increment
  for (let i = 0; i < d.count; i++, o += 2, frame += inc) {
    mem[o] = lo(frame, flags)
    mem[o + 1] = hi(frame)
  }
}

const indexAt = (lo: number, hi: number, shift: number): number =>
  shift < 32
    ? shift + 9 <= 32
      ? (lo >>> shift) & 511
      : ((lo >>> shift) | (hi << (32 - shift))) & 511
    : (hi >>> (shift - 32)) & 511

/**
 * Translates a batch of virtual addresses by walking the tables like the MMU (and like the WGSL
 * `translate` kernel): output pair `i` is the physical address `[lo, hi]`, or `[level, FAULT]` when
 * the walk met a non-present entry at `level`. Models `xe_pt_walk_range` reduced to a lookup.
 *
 * @since 0.1.0
 * @category kernels
 */
export const translate = (mem: Uint32Array, root: number, levels: number, vas: Uint32Array): Uint32Array => {
  const n = vas.length >>> 1
  const out = new Uint32Array(n * 2)
  for (let i = 0; i < n; i++) {
    const vlo = vas[2 * i] ?? 0
    const vhi = vas[2 * i + 1] ?? 0
    let table = root
    for (let level = levels - 1; level >= 0; level--) {
      const shift = LEVEL_SHIFTS[level] ?? 12
      const o = table * WORDS_PER_TABLE + indexAt(vlo, vhi, shift) * 2
      const elo = mem[o] ?? 0
      const ehi = mem[o + 1] ?? 0
      if ((elo & PteBits.PRESENT) === 0) {
        out[2 * i] = level
        out[2 * i + 1] = FAULT
        break
      }
      if (level === 0 || (elo & PteBits.LEAF) !== 0) {
        const mask = shift >= 32 ? 0xffffffff : 2 ** shift - 1
        out[2 * i] = ((elo & ~FLAGS & ~mask) | (vlo & mask)) >>> 0
        out[2 * i + 1] = ehi & HI_MASK
        break
      }
      table = (elo >>> SHIFT) + (ehi & HI_MASK) * LO_LIMIT
    }
  }
  return out
}

/** Number of 64-bit entries in an arena of `tables` tables. @since 0.1.0 @category kernels */
export const entriesOf = (tables: number): number => tables * ENTRIES_PER_TABLE
