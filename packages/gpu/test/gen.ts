/** Random page-table op generator and page-granular model shared by the planner and walker tests. */
import { type CpuPageTables, type PageTable, Pte } from "@drmkit/gpu"

/** Pages in the test window (4 GiB of VA). */
export const WINDOW = 1 << 20
/** First page of the window: straddles a 512 GiB boundary (and in 5 levels a 256 TiB one). */
export const windowBase = (levels: 4 | 5): number => (levels === 5 ? 2 ** 36 : 2 ** 27) - WINDOW / 2

export type Rand = () => number
const int = (r: Rand, n: number) => Math.floor(r() * n)

/** A generated op together with the window-relative page range it covers. */
export interface GenOp {
  readonly op: PageTable.Op
  readonly start: number
  readonly pages: number
}

/** Generates one op inside the window. */
export const genOp = (r: Rand, levels: 4 | 5): GenOp => {
  const k = r()
  const cls = r()
  let pages: number
  let align: number
  if (cls < 0.5) {
    pages = 1 + int(r, 1100)
    align = 1
  } else if (cls < 0.85) {
    pages = 512 * (1 + int(r, 4)) + (r() < 0.3 ? int(r, 600) - 300 : 0)
    align = r() < 0.7 ? 512 : 1
  } else {
    pages = 262144 * (1 + int(r, 2))
    align = r() < 0.7 ? 262144 : 512
  }
  pages = Math.max(1, Math.min(pages, WINDOW))
  const start = Math.floor(int(r, WINDOW - pages + 1) / align) * align
  const va = Pte.joinU64(0, 0) + BigInt(windowBase(levels) + start) * 4096n
  const size = BigInt(pages) * 4096n
  if (k < 0.55) {
    const b = r()
    const backing: PageTable.Backing =
      b < 0.1
        ? { _tag: "Null" }
        : b < 0.4 && pages <= 4096
          ? { _tag: "Pages", frames: Array.from({ length: pages }, () => int(r, 2 ** 30)) }
          : {
              _tag: "Contiguous",
              baseFrame: (1 + int(r, 1000)) * (r() < 0.6 ? 262144 : r() < 0.5 ? 512 : 1) + (r() < 0.2 ? start % 512 : 0)
            }
    const flags = (r() < 0.3 ? Pte.PteBits.DEVICE : 0) | (r() < 0.3 ? Pte.PteBits.CACHE0 : 0)
    return {
      op: { _tag: "Map", va, size, backing, options: { writable: r() < 0.7, flags, huge: r() < 0.9 } },
      start,
      pages
    }
  }
  return { op: { _tag: k < 0.8 ? "Unmap" : "Zap", va, size }, start, pages }
}

/** VA pairs (lo, hi) for window pages, with a random in-page offset. */
export const vasFor = (levels: 4 | 5, pages: ReadonlyArray<number>, r: Rand): Uint32Array => {
  const out = new Uint32Array(pages.length * 2)
  pages.forEach((p, i) => {
    const va = BigInt(windowBase(levels) + p) * 4096n + BigInt(int(r, 1024) * 4)
    const [lo, hi] = Pte.splitU64(va)
    out[2 * i] = lo
    out[2 * i + 1] = hi
  })
  return out
}

/** Page model: frame per window page, -1 unmapped, -2 NULL mapping. */
export class Model {
  readonly frames = new Float64Array(WINDOW).fill(-1)
  apply(g: GenOp): void {
    const { op, start, pages } = g
    if (op._tag !== "Map") {
      this.frames.fill(-1, start, start + pages)
      return
    }
    const b = op.backing
    for (let i = 0; i < pages; i++) {
      this.frames[start + i] =
        b._tag === "Null" ? -2 : b._tag === "Contiguous" ? b.baseFrame + i : (b.frames[i] as number)
    }
  }
  /** Compares translations of `pages` with the model; returns the first mismatch. */
  check(levels: 4 | 5, cpu: CpuPageTables.CpuPageTables, pages: ReadonlyArray<number>, r: Rand): string | undefined {
    const vas = vasFor(levels, pages, r)
    const t = cpu.translate(0, levels, vas)
    for (let i = 0; i < pages.length; i++) {
      const p = pages[i] as number
      const f = this.frames[p] as number
      const fault = t[2 * i + 1] === Pte.FAULT
      if (f === -1 && !fault) return `page ${p}: expected fault`
      if (f !== -1 && fault) return `page ${p}: expected frame ${f}, got fault at level ${t[2 * i]}`
      if (f >= 0) {
        const pa = Pte.joinNumber(t[2 * i] as number, t[2 * i + 1] as number)
        const want = f * 4096 + ((vas[2 * i] as number) & 0xfff)
        if (pa !== want) return `page ${p}: expected pa ${want}, got ${pa}`
      }
    }
    return undefined
  }
  /** After a zap: pages of partly covered huge leaves may be gone too; drop them where the tables fault. */
  resyncAround(levels: 4 | 5, cpu: CpuPageTables.CpuPageTables, start: number, pages: number): void {
    const lo = Math.max(0, Math.floor((windowBase(levels) + start) / 262144) * 262144 - windowBase(levels))
    const hi = Math.min(WINDOW, Math.ceil((windowBase(levels) + start + pages) / 262144) * 262144 - windowBase(levels))
    const list: Array<number> = []
    for (let p = lo; p < hi; p++) if ((this.frames[p] as number) !== -1) list.push(p)
    if (list.length === 0) return
    const t = cpu.translate(
      0,
      levels,
      vasFor(levels, list, () => 0)
    )
    list.forEach((p, i) => {
      if (t[2 * i + 1] === Pte.FAULT) this.frames[p] = -1
    })
  }
}

/** Pages worth checking after an op: its edges, its inside, and random others. */
export const samplePages = (g: GenOp, r: Rand, extra = 300): Array<number> => {
  const out: Array<number> = []
  for (const p of [g.start - 1, g.start, g.start + 1, g.start + g.pages - 1, g.start + g.pages, g.start + 511]) {
    if (p >= 0 && p < WINDOW) out.push(p)
  }
  for (let i = 0; i < 50; i++) out.push(g.start + int(r, g.pages))
  for (let i = 0; i < extra; i++) out.push(int(r, WINDOW))
  return out
}
