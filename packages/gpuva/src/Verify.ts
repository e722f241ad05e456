/**
 * Checks that a VM's page tables agree with its VA tree: every mapped page translates to the
 * frame its VA's object (and offset) says, NULL mappings translate to the zero page, and unmapped
 * addresses fault. The translation runs through the page-table executor (the GPU walker when the
 * VM's tables live on the GPU), so this is the "GPU == CPU reference" check of the tests and the
 * example — the CPU side being the VA tree itself.
 *
 * @since 0.1.0
 */
import { Effect } from "effect"
import type { GpuVa } from "./GpuVa.ts"
import type { GpuVm } from "./GpuVm.ts"
import type { VaSpace } from "./VaSpace.ts"
import type { BindObject } from "./VmBind.ts"

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
 * The physical address `addr` maps to according to the VA tree.
 *
 * @since 0.1.0
 * @category verification
 */
export const expected = (space: VaSpace, addr: bigint): Expected => {
  const va = space.findFirst(addr, 1n)
  if (va === undefined || va === space.reserved) return { _tag: "Fault" }
  if (va.obj === null) return { _tag: "Null" }
  return { _tag: "Pa", pa: paOf(va, addr) }
}

/** Physical address of `addr` inside `va` (object-backed). */
const paOf = (va: GpuVa, addr: bigint): bigint => {
  const f = (va.obj as BindObject).frames
  const byteInObj = va.offset + (addr - va.addr)
  const page = Number(byteInObj / PAGE)
  const frame = f._tag === "Contiguous" ? f.baseFrame + page : (f.frames[page] as number)
  return BigInt(frame) * PAGE + (byteInObj % PAGE)
}

/**
 * Addresses to check: the first byte of every mapped page (sparse NULL ones included), the first
 * and last page of every hole (every page of holes up to 16 pages), plus `unmapped` page addresses
 * spread evenly over the holes (deterministic).
 *
 * @since 0.1.0
 * @category verification
 */
export const sampleAddrs = (space: VaSpace, unmapped = 64): Array<bigint> => {
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
  if (total === 0n) return out
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
 * Translates `addrs` through the VM's page tables and compares each with {@link expected}.
 * Returns the number checked and a description of every mismatch (empty when they agree).
 *
 * @since 0.1.0
 * @category verification
 */
export const verify = (
  vm: GpuVm<unknown>,
  addrs: ReadonlyArray<bigint> = sampleAddrs(vm.space)
): Effect.Effect<{ readonly checked: number; readonly mismatches: ReadonlyArray<string> }, Error> =>
  Effect.gen(function* () {
    const pt = vm.pageTables
    if (pt === undefined) return { checked: 0, mismatches: ["VM has no page tables"] }
    const got = yield* pt.translate(addrs)
    const mismatches: Array<string> = []
    addrs.forEach((addr, i) => {
      const want = expected(vm.space, addr)
      const have = got[i]
      const ok =
        want._tag === "Fault" ? have === undefined : want._tag === "Null" ? readsNull(addr, have) : have === want.pa
      if (!ok && mismatches.length < 20) {
        const w = want._tag === "Pa" ? `0x${want.pa.toString(16)}` : want._tag
        mismatches.push(
          `0x${addr.toString(16)}: want ${w}, got ${have === undefined ? "fault" : `0x${have.toString(16)}`}`
        )
      }
    })
    return { checked: addrs.length, mismatches }
  })
