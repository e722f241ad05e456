/**
 * Page-table update descriptors — the unit of a bulk update.
 *
 * A descriptor writes `count` consecutive entries of one table starting at `first`. The values come
 * either from a literal array (xe's staged `{pt, ofs, qwords}` update, used for scattered system
 * pages) or from a generator `{baseFrame, increment, flags}` (amdgpu's SDMA "set PTE/PDE"
 * generator, used for contiguous memory): entry `i` = `pte(baseFrame + i·increment, flags)`.
 * A generator with `increment = 0` writes one constant value: that is how ranges are cleared
 * (to zero or to a scratch entry). Descriptors never cross a table (count ≤ 512 − first).
 *
 * An ordered descriptor list is applied as ONE submission (one fence). When it exceeds the device
 * limits, or when a descriptor overlaps an earlier one of the same dispatch (so "later wins" needs
 * an ordering point), {@link split} cuts it into several dispatches of that same submission.
 *
 * GPU encoding (8 × u32 per descriptor):
 *
 * ```
 * [0] table  [1] first  [2] count  [3] kind (0 literal, 1 generator)
 * literal:   [4] offset of the first value in the literal array (in entries)
 * generator: [4] baseFrame lo 32  [5] baseFrame hi 8  [6] increment  [7] flags (12 bits)
 * ```
 *
 * @since 0.1.0
 */
import { Invalid } from "@drmkit/core"
import { SpanSet } from "./internal/spans.ts"
import { ENTRIES_PER_TABLE, FLAG_MASK, MAX_FRAME } from "./Pte.ts"

/**
 * Literal source: `values` holds `2·count` u32 words (lo, hi per entry).
 *
 * @since 0.1.0
 * @category descriptors
 */
export interface Literal {
  readonly _tag: "Literal"
  readonly values: Uint32Array
}

/**
 * Generator source: entry `i` = frame `baseFrame + i·increment` with `flags` in the low 12 bits.
 *
 * @since 0.1.0
 * @category descriptors
 */
export interface Generator {
  readonly _tag: "Generator"
  readonly baseFrame: number
  readonly increment: number
  readonly flags: number
}

/**
 * One update descriptor `{table, first entry, count, source}`.
 *
 * @since 0.1.0
 * @category descriptors
 */
export interface Descriptor {
  readonly table: number
  readonly first: number
  readonly count: number
  readonly source: Literal | Generator
}

/** u32 words per encoded descriptor. @since 0.1.0 @category descriptors */
export const DESCRIPTOR_WORDS = 8

/** Literal descriptor: xe's staged `{pt, ofs, qwords}` update (scattered pages). @since 0.1.0 @category constructors */
export const literal = (table: number, first: number, values: Uint32Array): Descriptor => ({
  table,
  first,
  count: values.length >>> 1,
  source: { _tag: "Literal", values }
})

/** Generator descriptor: amdgpu's SDMA "set PTE/PDE" (`amdgpu_vm_sdma_set_ptes`) for contiguous memory. @since 0.1.0 @category constructors */
export const generator = (
  table: number,
  first: number,
  count: number,
  baseFrame: number,
  increment: number,
  flags: number
): Descriptor => ({ table, first, count, source: { _tag: "Generator", baseFrame, increment, flags } })

/** A generator writing `count` copies of one entry (`fill(…, 0, 0)` clears; a scratch frame gives xe's scratch PTEs). @since 0.1.0 @category constructors */
export const fill = (table: number, first: number, count: number, frame: number, flags: number): Descriptor =>
  generator(table, first, count, frame, 0, flags)

const bad = (what: string, reason: string, value?: unknown) => new Invalid({ what, reason, value })

/**
 * Validates one descriptor against an arena of `tableCount` tables. Returns the {@link Invalid}
 * for the first violation (models the kernel rejecting a malformed PT update before any write).
 *
 * @since 0.1.0
 * @category validation
 */
export const check = (d: Descriptor, tableCount: number): Invalid | undefined => {
  if (!Number.isInteger(d.table) || d.table < 0 || d.table >= tableCount) {
    return bad("descriptor.table", `must be in [0, ${tableCount})`, d.table)
  }
  if (!Number.isInteger(d.first) || d.first < 0 || d.first >= ENTRIES_PER_TABLE) {
    return bad("descriptor.first", "must be in [0, 512)", d.first)
  }
  if (!Number.isInteger(d.count) || d.count < 1 || d.first + d.count > ENTRIES_PER_TABLE) {
    return bad("descriptor.count", "must be >= 1 and stay inside the table (first + count <= 512)", d.count)
  }
  const s = d.source
  if (s._tag === "Literal") {
    return s.values.length === 2 * d.count ? undefined : bad("descriptor.values", "must hold 2·count words")
  }
  if (!Number.isInteger(s.baseFrame) || s.baseFrame < 0) return bad("descriptor.baseFrame", "bad frame", s.baseFrame)
  if (!Number.isInteger(s.increment) || s.increment < 0) return bad("descriptor.increment", "bad", s.increment)
  if (s.baseFrame + (d.count - 1) * s.increment > MAX_FRAME) return bad("descriptor", "frame overflows 40 bits")
  if ((d.count - 1) * s.increment >= 2 ** 32) return bad("descriptor.increment", "count·increment must be < 2^32")
  if (!Number.isInteger(s.flags) || (s.flags & ~FLAG_MASK) !== 0) return bad("descriptor.flags", "12 bits", s.flags)
  return undefined
}

/**
 * Limits that bound one dispatch of a bulk update: workgroups per dimension (one workgroup per
 * descriptor), and the literal words one storage binding can hold.
 *
 * @since 0.1.0
 * @category batching
 */
export interface BatchLimits {
  readonly maxDescriptorsPerDispatch: number
  readonly maxLiteralEntriesPerDispatch: number
}

/**
 * One dispatch: a slice `[start, end)` of the descriptor list, with its literal entry count.
 *
 * @since 0.1.0
 * @category batching
 */
export interface DispatchRange {
  readonly start: number
  readonly end: number
  readonly literalEntries: number
}

/**
 * Cuts an ordered descriptor list into dispatches: a new dispatch starts when the descriptor or
 * literal limits would be exceeded, or when a descriptor overlaps an entry already written in the
 * current dispatch (workgroups of one dispatch run unordered; dispatches are ordered, so "later
 * descriptor wins" holds exactly as on the CPU reference).
 *
 * @since 0.1.0
 * @category batching
 */
export const split = (descs: ReadonlyArray<Descriptor>, limits: BatchLimits): Array<DispatchRange> => {
  const out: Array<DispatchRange> = []
  let start = 0
  let lits = 0
  const spans = new SpanSet(descs)
  for (let i = 0; i < descs.length; i++) {
    const d = descs[i] as Descriptor
    const l = d.source._tag === "Literal" ? d.count : 0
    const full = i - start >= limits.maxDescriptorsPerDispatch || lits + l > limits.maxLiteralEntriesPerDispatch
    if (i > start && (full || spans.overlaps(d, i))) {
      out.push({ start, end: i, literalEntries: lits })
      start = i
      lits = 0
      spans.reset(i)
    }
    lits += l
    spans.add(d, i)
  }
  if (descs.length > start) out.push({ start, end: descs.length, literalEntries: lits })
  return out
}

/**
 * Encodes descriptors `[start, end)` for the GPU: the 8-word records and the packed literal array
 * (offsets relative to this dispatch).
 *
 * @since 0.1.0
 * @category encoding
 */
export const encode = (
  descs: ReadonlyArray<Descriptor>,
  range: DispatchRange
): { readonly records: Uint32Array; readonly literals: Uint32Array } => {
  const n = range.end - range.start
  const records = new Uint32Array(Math.max(1, n) * DESCRIPTOR_WORDS)
  const literals = new Uint32Array(Math.max(2, range.literalEntries * 2))
  let lit = 0
  for (let k = 0; k < n; k++) {
    const d = descs[range.start + k] as Descriptor
    const o = k * DESCRIPTOR_WORDS
    records[o] = d.table
    records[o + 1] = d.first
    records[o + 2] = d.count
    const s = d.source
    if (s._tag === "Literal") {
      records[o + 3] = 0
      records[o + 4] = lit
      literals.set(s.values, lit * 2)
      lit += d.count
    } else {
      records[o + 3] = 1
      records[o + 4] = s.baseFrame % 2 ** 32
      records[o + 5] = Math.floor(s.baseFrame / 2 ** 32)
      records[o + 6] = s.increment
      records[o + 7] = s.flags
    }
  }
  return { records, literals }
}

/** Total entries written by a descriptor list. @since 0.1.0 @category descriptors */
export const entryCount = (descs: ReadonlyArray<Descriptor>): number => {
  let n = 0
  for (const d of descs) n += d.count
  return n
}
