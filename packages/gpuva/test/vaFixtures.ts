import { GpuVa, type Ops, VaSpace } from "@drmkit/gpuva"
import { Result } from "effect"

export const obj = (name: string, size = 1n << 40n): GpuVa.GemObject => ({ name, size })
export const a = obj("a")
export const b = obj("b")
export const c = obj("c")

type Ma = GpuVa.MapArgs
const o = (x: GpuVa.GemObject | null) => (x === null ? "-" : x.name)
/** `(addr,range,obj,off)` in decimal, as the reference tables write VAs. */
export const va = (m: Ma): string => `(${m.addr},${m.range},${o(m.obj)},${m.offset})`
export const m = (addr: number, range: number, ob: GpuVa.GemObject | null, offset: number): Ma => ({
  addr: BigInt(addr),
  range: BigInt(range),
  obj: ob,
  offset: BigInt(offset)
})

/** Compact op notation: `MAP(0,1,a,10)`, `UNMAP((0,1,a,10),T)`, `REMAP(-,(1,1,a,11),(0,2,a,10),F)`. */
export const show = (op: Ops.Op): string => {
  switch (op._tag) {
    case "Map":
      return `MAP${va(op)}`
    case "Unmap":
      return `UNMAP(${va(op.va)},${op.keep ? "T" : "F"})`
    case "Remap":
      return `REMAP(${op.prev ? va(op.prev) : "-"},${op.next ? va(op.next) : "-"},${va(op.unmap.va)},${op.unmap.keep ? "T" : "F"})`
    case "Prefetch":
      return `PREFETCH${va(op.va)}`
  }
}

export const tree = (space: VaSpace.VaSpace): ReadonlyArray<string> => [...space].map(va)

/** A space `[0, size)` (units, page size 1) holding `existing`. */
export const spaceWith = (existing: ReadonlyArray<Ma>, options: Partial<VaSpace.Options> = {}): VaSpace.VaSpace => {
  const space = VaSpace.makeUnsafe({ start: 0n, range: 1000n, ...options })
  for (const e of existing) Result.getOrThrow(space.insert(GpuVa.make(e)))
  return space
}
