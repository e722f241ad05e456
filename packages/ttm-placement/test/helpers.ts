import type { Effect } from "effect"
import { Device, Managers, Placement } from "../src/index.ts"

export const { MemType, PlaceFlags, place, PAGE_SIZE } = Placement
export const KiB = 1024
export const MiB = 1024 * 1024

/** A device with a buddy VRAM and a range TT of the given sizes (bytes). */
export const makeDevice = (
  o: { vram?: number; tt?: number; pageLimit?: number; funcs?: Partial<Device.DriverFuncs> } = {}
) =>
  Device.make({
    managers: [
      { memType: MemType.VRAM, name: "vram", backend: Managers.buddyBackend((o.vram ?? MiB) / PAGE_SIZE) },
      { memType: MemType.TT, name: "tt", backend: Managers.rangeBackend((o.tt ?? 4 * MiB) / PAGE_SIZE) }
    ],
    ...(o.pageLimit === undefined ? {} : { pageLimit: o.pageLimit }),
    ...(o.funcs === undefined ? {} : { funcs: o.funcs })
  })

export const pattern = (size: number, seed: number): Uint8Array => {
  const words = new Uint32Array(size / 4)
  let x = seed >>> 0 || 1
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    words[i] = x >>> 0
  }
  return new Uint8Array(words.buffer)
}

export const run = <A, E>(eff: Effect.Effect<A, E>) => eff
