/**
 * xe-lite's checks after every step:
 *
 * - **translations**: every mapped page (plus samples of the holes) is translated by the WGSL
 *   page-table walker on the GPU and compared with what the VA tree and the BO's *current* TTM
 *   resource say: a valid VA must reach the manager page holding that page of the BO now, a VA
 *   flagged `Invalidated` (its BO moved) must fault (zapped), a hole must fault.
 * - **contents**: GPU checksums of every BO against the checksums of what was written.
 */
import { GpuVa, Verify } from "@drmkit/gpuva"
import { type BufferObject, Debug, Placement } from "@drmkit/ttm-placement"
import { Effect } from "effect"
import type { XeLite } from "./Driver.ts"
import { frameOfPage, locate, pageOfResource, type XeBo } from "./XeBo.ts"

const { MemType } = Placement
const PAGE = 4096n

/** Outcome of a translation check. */
export interface Translations {
  readonly checked: number
  /** Mapped pages that translate to VRAM / TT pages, and zapped ones (faulting, as they must). */
  readonly vram: number
  readonly tt: number
  readonly zapped: number
  readonly mismatches: ReadonlyArray<string>
}

type Want = { readonly _tag: "Fault"; readonly why: string } | { readonly _tag: "Pa"; readonly pa: bigint }

/** What `addr` must translate to, from the VA tree and the BO's current resource. */
const want = (d: XeLite, addr: bigint): Want => {
  const space = d.vm.space
  const va = space.findFirst(addr, 1n)
  if (va === undefined || va === space.reserved) return { _tag: "Fault", why: "hole" }
  if ((va.flags & GpuVa.Flags.Invalidated) !== 0) return { _tag: "Fault", why: "zapped" }
  const obj = va.obj as XeBo | null
  const res = obj?.bo.resource
  if (obj === null || res === undefined) return { _tag: "Pa", pa: -1n }
  const byte = va.offset + (addr - va.addr)
  const page = pageOfResource(res, Number(byte / PAGE))
  const frame = page === undefined ? undefined : frameOfPage(res.memType, page)
  return { _tag: "Pa", pa: frame === undefined ? -1n : BigInt(frame) * PAGE + (byte % PAGE) }
}

const hex = (x: bigint) => `0x${x.toString(16)}`

/**
 * Translates every mapped page and hole samples on the GPU and compares each with the VA tree +
 * the BO's current backing.
 */
export const translations = (d: XeLite, holeSamples = 64): Effect.Effect<Translations> =>
  Effect.gen(function* () {
    const addrs = Verify.sampleAddrs(d.vm.space, holeSamples)
    const got = yield* d.pt.translate(addrs).pipe(Effect.orDie)
    const mismatches: Array<string> = []
    let vram = 0
    let tt = 0
    let zapped = 0
    addrs.forEach((addr, i) => {
      const w = want(d, addr)
      const have = got[i]
      let ok: boolean
      if (w._tag === "Fault") {
        ok = have === undefined
        if (ok && w.why === "zapped") zapped++
      } else {
        ok = have === w.pa
        if (ok && have !== undefined) {
          const m = locate(Number(have / PAGE)).memType
          if (m === MemType.VRAM) vram++
          else if (m === MemType.TT) tt++
        }
      }
      if (!ok && mismatches.length < 20) {
        const wanted = w._tag === "Fault" ? `fault (${w.why})` : hex(w.pa)
        mismatches.push(`${hex(addr)}: want ${wanted}, got ${have === undefined ? "fault" : hex(have)}`)
      }
    })
    return { checked: addrs.length, vram, tt, zapped, mismatches }
  })

/**
 * gpuva's own check (`Verify.verify`): the number of addresses where the page tables differ from
 * the VA tree. With `"fault"` (xe semantics, the default) an `Invalidated` VA must fault — zero
 * after move_notify's zaps; with `"current"` every VA must already map its object's current
 * frames ("is everything rebound?") — non-zero exactly while moved BOs are not rebound yet.
 */
export const gpuvaMismatches = (d: XeLite, invalidated: Verify.InvalidatedMode = "fault"): Effect.Effect<number> =>
  Effect.map(
    Verify.verify(d.vm, Verify.sampleAddrs(d.vm.space, 1), { invalidated }).pipe(Effect.orDie),
    (r) => r.mismatches.length
  )

/** Names of the BOs whose GPU checksum differs from the expected one. */
export const damaged = (
  d: XeLite,
  expected: ReadonlyMap<BufferObject.Bo, number>
): Effect.Effect<ReadonlyArray<string>> =>
  Effect.gen(function* () {
    const bos = [...expected.keys()]
    const sums = yield* Debug.checksums(d.ttm, bos)
    return bos.filter((b, i) => sums[i] !== expected.get(b)).map((b) => b.name)
  })
