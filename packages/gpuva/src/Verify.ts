/**
 * Checks that a VM's page tables agree with its VA tree: every mapped page translates to the
 * frame its VA's object (and offset) says, NULL mappings translate to the zero page, unmapped
 * addresses fault, and so do the pages of VAs flagged `Invalidated` (zapped by
 * `xe_vm_invalidate_vma()`, see `BindQueue.invalidate`, until a rebind). The translation runs through the page-table executor (the GPU walker when the
 * VM's tables live on the GPU), so this is the "GPU == CPU reference" check of the tests and the
 * example — the CPU side being the VA tree itself.
 *
 * @since 0.1.0
 */
import { Effect } from "effect"
import { Flags, type GpuVa } from "./GpuVa.ts"
import type { GpuVm } from "./GpuVm.ts"
import type { VaSpace } from "./VaSpace.ts"
import type { BindObject, Frames } from "./VmBind.ts"

const PAGE = 4096n

/**
 * What an address should translate to (the VA tree's answer; IGT's expected-value side).
 *
 * @since 0.1.0
 * @category models
 */
export type Expected =
  | { readonly _tag: "Fault" }
  | { readonly _tag: "Null" }
  | { readonly _tag: "Pa"; readonly pa: bigint }

/**
 * What to expect of a VA flagged `Invalidated`: `"fault"` (xe semantics after
 * `xe_vm_invalidate_vma()`: its PTEs were zapped, the GPU faults until a rebind) or `"current"`
 * (it must already map its object's current frames: "is everything rebound?" — an invalidated VA
 * that is not rebound yet is a mismatch).
 *
 * @since 0.1.0
 * @category models
 */
export type InvalidatedMode = "fault" | "current"

/**
 * The physical address `addr` maps to according to the VA tree (an `Invalidated` VA faults when
 * `invalidated` is `"fault"`, the default; `"current"` wants it rebound). Reads the object's `frames` only for a VA that must be mapped; an
 * object whose frames cannot be read (not GPU-mappable now) throws.
 *
 * @since 0.1.0
 * @category verification
 */
export const expected = (space: VaSpace, addr: bigint, invalidated: InvalidatedMode = "fault"): Expected => {
  const va = space.findFirst(addr, 1n)
  if (va === undefined || va === space.reserved) return { _tag: "Fault" }
  if (invalidated === "fault" && (va.flags & Flags.Invalidated) !== 0) return { _tag: "Fault" }
  if (va.obj === null) return { _tag: "Null" }
  return { _tag: "Pa", pa: paOf(va, addr, (va.obj as BindObject).frames) }
}

/** Physical address of `addr` inside `va` (object-backed) given the object's frames. */
const paOf = (va: GpuVa, addr: bigint, f: Frames): bigint => {
  const byteInObj = va.offset + (addr - va.addr)
  const page = Number(byteInObj / PAGE)
  const frame = f._tag === "Contiguous" ? f.baseFrame + page : (f.frames[page] as number)
  return BigInt(frame) * PAGE + (byteInObj % PAGE)
}

/**
 * Addresses to check: the first byte of every mapped page (sparse NULL ones included), the first
 * and last page of every hole (every page of holes up to 16 pages), plus `unmapped` page addresses
 * spread evenly over the holes (deterministic). `unmapped = 0` adds no spread samples; a negative
 * or non-integer count is API misuse (a thrown `RangeError`, a defect).
 *
 * @since 0.1.0
 * @category verification
 */
export const sampleAddrs = (space: VaSpace, unmapped = 64): Array<bigint> => {
  if (!Number.isSafeInteger(unmapped) || unmapped < 0) {
    throw new RangeError(`sampleAddrs: unmapped must be a non-negative integer, got ${unmapped}`)
  }
  const out: Array<bigint> = []
  const holes: Array<readonly [bigint, bigint]> = []
  let at = space.start
  for (const va of space) {
    if (va.addr > at) holes.push([at, va.addr])
    if (va !== space.reserved) for (let a = va.addr; a < va.end; a += PAGE) out.push(a)
    at = va.end
  }
  if (at < space.end) holes.push([at, space.end])
  for (const [a, b] of holes) {
    // the pages next to mappings (where munmap-style holes and off-by-one errors show), all of a small hole
    if ((b - a) / PAGE <= 16n) for (let x = a; x < b; x += PAGE) out.push(x)
    else out.push(a, b - PAGE)
  }
  const total = holes.reduce((s, [a, b]) => s + (b - a) / PAGE, 0n)
  if (total === 0n || unmapped === 0) return out
  const step = total / BigInt(unmapped) > 0n ? total / BigInt(unmapped) : 1n
  let k = 0n
  for (const [a, b] of holes) {
    const pages = (b - a) / PAGE
    for (; k < pages; k += step) out.push(a + k * PAGE)
    k -= pages
  }
  return out
}

/** Leaf spans a NULL entry may have (4 KiB, 2 MiB, 1 GiB): xe's NULL PTEs point at frame 0. */
const LEAF_SPANS = [1n << 12n, 1n << 21n, 1n << 30n]

/** A NULL (sparse) leaf translates `addr` to its offset inside the leaf (frame 0). */
const readsNull = (addr: bigint, have: bigint | undefined): boolean =>
  have !== undefined && LEAF_SPANS.some((span) => have === addr % span)

/**
 * Options of {@link verify}.
 *
 * @since 0.1.0
 * @category models
 */
export interface VerifyOptions {
  /**
   * What an `Invalidated` VA must translate to (see {@link InvalidatedMode}). The default
   * `"fault"` checks a VM whose driver zaps invalidated VAs (xe, `BindQueue.invalidate`); pass
   * `"current"` to ask "is everything rebound to the objects' current frames?" (an invalidated VA
   * not rebound yet is then a mismatch).
   */
  readonly invalidated?: InvalidatedMode
}

/** The frames of `obj`, read once per verification; an Error when it has none now. */
const framesOnce = (cache: Map<BindObject, Frames | Error>, obj: BindObject): Frames | Error => {
  let f = cache.get(obj)
  if (f === undefined) {
    try {
      f = obj.frames
    } catch (e) {
      f = e instanceof Error ? e : new Error(String(e))
    }
    cache.set(obj, f)
  }
  return f
}

const hex = (x: bigint): string => `0x${x.toString(16)}`

/** Compares one translation with the VA tree; a description of the mismatch, or undefined. */
const compare = (
  space: VaSpace,
  addr: bigint,
  have: bigint | undefined,
  mode: InvalidatedMode,
  cache: Map<BindObject, Frames | Error>
): string | undefined => {
  const got = have === undefined ? "fault" : hex(have)
  const va = space.findFirst(addr, 1n)
  if (va === undefined || va === space.reserved || (mode === "fault" && (va.flags & Flags.Invalidated) !== 0)) {
    return have === undefined ? undefined : `${hex(addr)}: want Fault, got ${got}`
  }
  if (va.obj === null) return readsNull(addr, have) ? undefined : `${hex(addr)}: want Null, got ${got}`
  const f = framesOnce(cache, va.obj as BindObject)
  if (f instanceof Error) return `${hex(addr)}: ${va.obj.name} is mapped but has no frames (${f.message}), got ${got}`
  const pa = paOf(va, addr, f)
  return have === pa ? undefined : `${hex(addr)}: want ${hex(pa)}, got ${got}`
}

/**
 * Translates `addrs` through the VM's page tables and compares each with {@link expected}: VAs
 * flagged `Invalidated` must fault with `options.invalidated: "fault"` (then their objects'
 * `frames` are not read — the default; `"current"` wants them rebound); a valid VA whose object has
 * no frames now (not GPU-mappable) is a mismatch, not a crash. Returns the number checked and a description of the first 20
 * mismatches (empty when they agree).
 *
 * @since 0.1.0
 * @category verification
 */
export const verify = (
  vm: GpuVm<unknown>,
  addrs: ReadonlyArray<bigint> = sampleAddrs(vm.space),
  options: VerifyOptions = {}
): Effect.Effect<{ readonly checked: number; readonly mismatches: ReadonlyArray<string> }, Error> =>
  Effect.gen(function* () {
    const pt = vm.pageTables
    if (pt === undefined) return { checked: 0, mismatches: ["VM has no page tables"] }
    const got = yield* pt.translate(addrs)
    const mode = options.invalidated ?? "fault"
    const cache = new Map<BindObject, Frames | Error>()
    const mismatches: Array<string> = []
    for (let i = 0; i < addrs.length && mismatches.length < 20; i++) {
      const bad = compare(vm.space, addrs[i] as bigint, got[i], mode, cache)
      if (bad !== undefined) mismatches.push(bad)
    }
    return { checked: addrs.length, mismatches }
  })
