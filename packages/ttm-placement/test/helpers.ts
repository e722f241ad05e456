import {
  Access,
  type BufferObject,
  Device,
  type Fence,
  Lifecycle,
  Managers,
  Placement,
  Reserve,
  Validate
} from "@drmkit/ttm-placement"
import { Effect } from "effect"

export const { MemType, PlaceFlags, place, PAGE_SIZE } = Placement
export const KiB = 1024
export const MiB = 1024 * 1024
/** KUnit's mock domains. */
export const MOCK1 = 4
export const MOCK2 = 5

/** Options of {@link makeDevice}. */
export interface DeviceOptions {
  readonly vram?: number
  readonly tt?: number
  readonly pageLimit?: number
  readonly funcs?: Partial<Device.DriverFuncs>
}

/** The config of {@link makeDevice}: a buddy VRAM and a range TT of the given sizes (bytes). */
export const deviceConfig = (o: DeviceOptions = {}): Device.DeviceConfig => ({
  managers: [
    { memType: MemType.VRAM, name: "vram", backend: Managers.buddyBackend((o.vram ?? MiB) / PAGE_SIZE) },
    { memType: MemType.TT, name: "tt", backend: Managers.rangeBackend((o.tt ?? 4 * MiB) / PAGE_SIZE) }
  ],
  ...(o.pageLimit === undefined ? {} : { pageLimit: o.pageLimit }),
  ...(o.funcs === undefined ? {} : { funcs: o.funcs })
})

/** A device with a buddy VRAM and a range TT of the given sizes (bytes), on its own GPU device. */
export const makeDevice = (o: DeviceOptions = {}) => Device.make(deviceConfig(o))

/**
 * The hooks of `ttm_kunit_helpers.c`: VRAM and SYSTEM evict to SYSTEM, TT to MOCK2, MOCK1 is
 * purged; a VRAM → SYSTEM move needs a hop through TT.
 */
export const kunitFuncs: Partial<Device.DriverFuncs> = {
  evictFlags: (bo) => {
    const t = bo.resource?.memType
    if (t === MemType.TT) return [place(MOCK2)]
    if (t === MOCK1) return []
    return [place(MemType.SYSTEM)]
  },
  move: (bo, to) =>
    bo.resource?.memType === MemType.VRAM && to.memType === MemType.SYSTEM
      ? { _tag: "Hop", place: place(MemType.TT) }
      : { _tag: "Copy" }
}

/** A "bad" manager backend (`ttm_bad_manager`): always out of space. */
export const badBackend = (sizePages: number): Managers.BackendLike => ({
  kind: "bad",
  sizePages,
  alloc: () => undefined,
  free: () => {}
})

/** The KUnit device: 1 MiB buddy managers for the given mock types. */
export const kunitDevice = (
  mocks: ReadonlyArray<number>,
  o: { bad?: ReadonlyArray<number>; funcs?: Partial<Device.DriverFuncs>; size?: number } = {}
) =>
  Device.make({
    managers: [
      ...mocks.map((t) => ({
        memType: t,
        name: `mock${t}`,
        backend: Managers.buddyBackend((o.size ?? MiB) / PAGE_SIZE)
      })),
      ...(o.bad ?? []).map((t) => ({ memType: t, name: `bad${t}`, backend: badBackend((o.size ?? MiB) / PAGE_SIZE) }))
    ],
    funcs: { ...kunitFuncs, ...o.funcs }
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

/** Creates a BO in `placement` and returns it unlocked. */
export const bo = (
  dev: Device.Device,
  size: number,
  placement: Placement.Placement,
  o: Partial<BufferObject.BoOptions> = {}
) => Lifecycle.create(dev, { size, ...o }, placement)

/** Reserve, validate, unreserve; returns the ctx (bytesMoved). */
export const validate = (b: BufferObject.Bo, placement: Placement.Placement, ctx = Device.opCtx()) =>
  Reserve.withReserved(b, (h) => Validate.validate(h, b, placement, ctx)).pipe(Effect.as(ctx))

/** Reserve and write. */
export const write = (b: BufferObject.Bo, data: Uint8Array): Effect.Effect<Fence.Fence, unknown> =>
  Reserve.withReserved(b, (h) => Access.write(h, b, data))

/** Reserve and checksum on the GPU. */
export const checksum = (b: BufferObject.Bo) => Reserve.withReserved(b, (h) => Access.checksum(h, b))
