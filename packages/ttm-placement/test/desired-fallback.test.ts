/**
 * The DESIRED/FALLBACK two-pass rules of ttm-dmabuf.md §2.2, including the two regressions the
 * reference names: i915's missing DESIRED (evicting in what should be the no-eviction attempt) and
 * xe's unflagged TT (pass 1 parks BOs in TT and VRAM eviction is never tried).
 */

import { Device } from "@drmkit/ttm-placement"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { bo, KiB, MemType, makeDevice, PlaceFlags, place, validate } from "./helpers.ts"

const S = 256 * KiB
const fullVram = (dev: Device.Device) => Effect.forEach([0, 1, 2, 3], () => bo(dev, S, [place(MemType.VRAM)]))

describe("DESIRED / FALLBACK", () => {
  it.live("i915 regression: VRAM without DESIRED evicts at once; with DESIRED the first attempt never evicts", () =>
    Effect.gen(function* () {
      const dev = yield* makeDevice({ vram: 4 * S })
      const victims = yield* fullVram(dev)
      const a = yield* bo(dev, S, [place(MemType.SYSTEM)])
      yield* validate(a, [
        place(MemType.VRAM, { flags: PlaceFlags.DESIRED }),
        place(MemType.TT, { flags: PlaceFlags.FALLBACK })
      ])
      assert.strictEqual(a.resource?.memType, MemType.TT, "DESIRED VRAM full: falls back, nobody evicted")
      assert.isTrue(victims.every((v) => v.resource?.memType === MemType.VRAM))
      const b = yield* bo(dev, S, [place(MemType.SYSTEM)])
      yield* validate(b, [place(MemType.VRAM), place(MemType.TT)])
      assert.strictEqual(b.resource?.memType, MemType.TT, "unflagged VRAM + TT: pass 1 takes TT (xe)")
      const c = yield* bo(dev, S, [place(MemType.SYSTEM)])
      yield* validate(c, [place(MemType.VRAM)])
      assert.strictEqual(c.resource?.memType, MemType.VRAM, "unflagged VRAM alone: evicts in pass 2")
      assert.strictEqual(victims.filter((v) => v.resource?.memType === MemType.TT).length, 1)
    })
  )

  it.live("xe fix: VRAM then TT FALLBACK gives VRAM → VRAM-with-eviction → TT", () =>
    Effect.gen(function* () {
      const dev = yield* makeDevice({ vram: 4 * S })
      yield* fullVram(dev)
      const a = yield* bo(dev, S, [place(MemType.SYSTEM)])
      yield* validate(a, [place(MemType.VRAM), place(MemType.TT, { flags: PlaceFlags.FALLBACK })])
      assert.strictEqual(a.resource?.memType, MemType.VRAM)
    })
  )

  it.live("a BO parked in FALLBACK is promoted cheaply when room appears, never by eviction", () =>
    Effect.gen(function* () {
      const dev = yield* makeDevice({ vram: 4 * S })
      const victims = yield* fullVram(dev)
      const placement = [
        place(MemType.VRAM, { flags: PlaceFlags.DESIRED }),
        place(MemType.TT, { flags: PlaceFlags.FALLBACK })
      ]
      const a = yield* bo(dev, S, [place(MemType.SYSTEM)])
      yield* validate(a, placement)
      assert.strictEqual(a.resource?.memType, MemType.TT)
      const again = yield* validate(a, placement)
      assert.strictEqual(again.bytesMoved, 0, "pass 2 accepts the fallback as compatible")
      assert.strictEqual(a.resource?.memType, MemType.TT)
      const [v0] = victims
      if (v0 === undefined) return assert.fail("victims")
      yield* validate(v0, [place(MemType.SYSTEM)])
      assert.strictEqual(
        yield* validate(a, placement).pipe(Effect.map((c) => c.bytesMoved)),
        0,
        "ghost still holds the range"
      )
      yield* Device.drain(dev)
      const promoted = yield* validate(a, placement)
      assert.strictEqual(a.resource?.memType, MemType.VRAM, "pass 1 promotion once VRAM has room")
      assert.strictEqual(promoted.bytesMoved, S)
    })
  )
})
