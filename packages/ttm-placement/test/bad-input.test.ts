/**
 * Bad input at the boundary: typed `Invalid`, nothing changed (issue §5).
 */

import { Access, Device, Lifecycle, type Placement, Reserve, Validate } from "@drmkit/ttm-placement"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { bo, KiB, MemType, makeDevice, place } from "./helpers.ts"

describe("bad input", () => {
  for (const size of [0, -4096, 4096.5, 1000, Number.NaN, 2 ** 60]) {
    it.live(`create with size ${size} → Invalid, nothing allocated`, () =>
      Effect.gen(function* () {
        const dev = yield* makeDevice()
        const err = yield* Effect.flip(Lifecycle.create(dev, { size }, [place(MemType.VRAM)]))
        assert.strictEqual(err._tag, "Invalid")
        assert.strictEqual(dev.bos.size, 0)
        assert.strictEqual(dev.manager(MemType.VRAM)?.usage, 0)
      })
    )
  }

  for (const [name, o] of [
    ["priority 4", { priority: 4 }],
    ["priority -1", { priority: -1 }],
    ["alignment 3", { pageAlignment: 3 }],
    ["type", { type: "weird" }]
  ] as const) {
    it.live(`create with ${name} → Invalid`, () =>
      Effect.gen(function* () {
        const dev = yield* makeDevice()
        const err = yield* Effect.flip(
          Lifecycle.create(dev, { size: 4 * KiB, ...(o as object) }, [place(MemType.VRAM)])
        )
        assert.strictEqual(err._tag, "Invalid")
      })
    )
  }

  const bad: ReadonlyArray<readonly [string, Placement.Placement]> = [
    ["fpfn > lpfn", [place(MemType.VRAM, { fpfn: 10, lpfn: 5 })]],
    ["negative fpfn", [place(MemType.VRAM, { fpfn: -1 })]],
    ["fractional lpfn", [place(MemType.VRAM, { lpfn: 1.5 })]],
    ["memType 8", [place(8)]],
    ["memType -1", [place(-1)]],
    ["unknown flag", [place(MemType.VRAM, { flags: 1 << 7 })]],
    ["DESIRED|FALLBACK", [place(MemType.VRAM, { flags: 8 | 16 })]]
  ]
  for (const [name, placement] of bad) {
    it.live(`validate with ${name} → Invalid, BO untouched`, () =>
      Effect.gen(function* () {
        const dev = yield* makeDevice()
        const b = yield* bo(dev, 8 * KiB, [place(MemType.TT)])
        const before = b.resource
        const ctx = Device.opCtx()
        const err = yield* Effect.flip(Reserve.withReserved(b, (h) => Validate.validate(h, b, placement, ctx)))
        assert.strictEqual(err._tag, "Invalid")
        assert.strictEqual(b.resource, before)
        assert.strictEqual(ctx.bytesMoved, 0)
        assert.strictEqual(dev.stats.moves, 1)
      })
    )
  }

  it.live("empty placement on a pinned BO → Invalid (drmkit keeps pinned backing)", () =>
    Effect.gen(function* () {
      const dev = yield* makeDevice()
      const b = yield* bo(dev, 8 * KiB, [place(MemType.TT)])
      const err = yield* Effect.flip(
        Reserve.withReserved(b, (h) =>
          Effect.gen(function* () {
            yield* Effect.sync(() => void (b.pinCount = 1))
            return yield* Validate.validate(h, b, [])
          })
        )
      )
      assert.strictEqual(err._tag, "Invalid")
    })
  )

  for (const [name, data, offset] of [
    ["unaligned length", new Uint8Array(6), 0],
    ["unaligned offset", new Uint8Array(8), 2],
    ["past the end", new Uint8Array(8 * KiB), 4]
  ] as const) {
    it.live(`write with ${name} → Invalid`, () =>
      Effect.gen(function* () {
        const dev = yield* makeDevice()
        const b = yield* bo(dev, 8 * KiB, [place(MemType.TT)])
        const err = yield* Effect.flip(Reserve.withReserved(b, (h) => Access.write(h, b, data, offset)))
        assert.strictEqual(err._tag, "Invalid")
      })
    )
  }
})
