/**
 * Direct literal writes: the part of a bulk update whose literal PTEs are written straight into the
 * arena with `queue.writeBuffer` (amdgpu copies precomputed PTEs with SDMA; xe's CPU-side staging),
 * instead of being uploaded to a literal buffer and copied again by the compute kernel.
 *
 * A queue write executes before the job's dispatches, so a literal descriptor may only take this path
 * when no EARLIER descriptor of the list overlaps it (otherwise that earlier descriptor, running
 * later in the kernel, would overwrite it). Eligible descriptors are then pairwise disjoint, and a
 * later kernel descriptor overlapping one still wins, exactly as on the CPU reference. Consecutive
 * eligible descriptors that are contiguous in arena memory coalesce into one write (each queue write
 * costs a few µs on Dawn); runs shorter than {@link MIN_DIRECT_ENTRIES} stay in the kernel.
 */
import type { Descriptor } from "../Descriptor.ts"
import { WORDS_PER_TABLE } from "../Pte.ts"
import { SpanSet } from "./spans.ts"

/** Shortest literal run (entries) written with a queue write rather than by the kernel. */
export const MIN_DIRECT_ENTRIES = 64

/** One coalesced literal run: `words` u32 at `byteOffset` of arena segment `segment`. */
export interface DirectWrite {
  readonly segment: number
  readonly byteOffset: number
  readonly words: number
  readonly parts: ReadonlyArray<Uint32Array>
}

/** A descriptor list split into queue writes (run first) and kernel descriptors (in list order). */
export interface Staged {
  readonly writes: ReadonlyArray<DirectWrite>
  readonly kernel: ReadonlyArray<Descriptor>
}

/** Marks literal descriptors that no earlier descriptor of the list overlaps. */
const eligibleLiterals = (descs: ReadonlyArray<Descriptor>): Uint8Array => {
  const out = new Uint8Array(descs.length)
  const spans = new SpanSet(descs)
  for (let i = 0; i < descs.length; i++) {
    const d = descs[i] as Descriptor
    if (d.source._tag === "Literal" && !spans.overlaps(d, i)) out[i] = 1
    spans.add(d, i)
  }
  return out
}

const valuesOf = (d: Descriptor): Uint32Array => (d.source._tag === "Literal" ? d.source.values : new Uint32Array(0))

/** The parts as one view when they already sit back to back in one ArrayBuffer. */
const asOneView = (parts: ReadonlyArray<Uint32Array>, words: number): Uint32Array | undefined => {
  const first = parts[0]
  if (first === undefined) return undefined
  let end = first.byteOffset + first.byteLength
  for (let k = 1; k < parts.length; k++) {
    const v = parts[k] as Uint32Array
    if (v.buffer !== first.buffer || v.byteOffset !== end) return undefined
    end += v.byteLength
  }
  return new Uint32Array(first.buffer, first.byteOffset, words)
}

/**
 * Host packing buffer, reused by every run: packing through 256 KiB of warm memory costs far less
 * than a fresh run-sized array (page faults) and keeps the number of queue writes small.
 */
let scratch = new Uint32Array(0)
const SCRATCH_WORDS = 64 * 1024

/**
 * Performs the queue writes of a staged list: runs whose values are one view are written as is,
 * others are packed through the scratch buffer (`writeBuffer` copies its data before returning).
 */
export const writeRuns = (
  queue: GPUQueue,
  segments: ReadonlyArray<GPUBuffer>,
  writes: ReadonlyArray<DirectWrite>
): void => {
  for (const w of writes) {
    const buf = segments[w.segment] as GPUBuffer
    const view = asOneView(w.parts, w.words)
    if (view !== undefined) {
      queue.writeBuffer(buf, w.byteOffset, view)
      continue
    }
    if (scratch.length < SCRATCH_WORDS) scratch = new Uint32Array(SCRATCH_WORDS)
    let at = w.byteOffset
    let n = 0
    for (const v of w.parts) {
      if (n + v.length > SCRATCH_WORDS) {
        queue.writeBuffer(buf, at, scratch.subarray(0, n))
        at += n * 4
        n = 0
      }
      scratch.set(v, n)
      n += v.length
    }
    if (n > 0) queue.writeBuffer(buf, at, scratch.subarray(0, n))
  }
}

/**
 * Splits `descs` (already validated) for an arena of `tablesPerSegment` tables per segment.
 */
export const stage = (descs: ReadonlyArray<Descriptor>, tablesPerSegment: number): Staged => {
  const ok = eligibleLiterals(descs)
  const writes: Array<DirectWrite> = []
  const kernel: Array<Descriptor> = []
  const wordOf = (d: Descriptor) => (d.table % tablesPerSegment) * WORDS_PER_TABLE + d.first * 2
  for (let i = 0; i < descs.length; ) {
    const d = descs[i] as Descriptor
    if (ok[i] !== 1) {
      kernel.push(d)
      i++
      continue
    }
    const segment = Math.floor(d.table / tablesPerSegment)
    let end = wordOf(d) + 2 * d.count
    let j = i + 1
    for (; j < descs.length && ok[j] === 1; j++) {
      const n = descs[j] as Descriptor
      if (Math.floor(n.table / tablesPerSegment) !== segment || wordOf(n) !== end) break
      end += 2 * n.count
    }
    const run = descs.slice(i, j)
    const words = end - wordOf(d)
    if (words >= 2 * MIN_DIRECT_ENTRIES) {
      writes.push({ segment, byteOffset: wordOf(d) * 4, words, parts: run.map(valuesOf) })
    } else for (const r of run) kernel.push(r)
    i = j
  }
  return { writes, kernel }
}
