import { Access, Lifecycle, Reserve, Validate } from "@drmkit/ttm-placement"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { KiB, MemType, makeDevice, pattern, place } from "./helpers.ts"

describe("smoke", () => {
  it.live("create, write, move VRAM -> TT -> SYSTEM keeps contents", () =>
    Effect.gen(function* () {
      const dev = yield* makeDevice()
      const bo = yield* Lifecycle.create(dev, { size: 64 * KiB }, [place(MemType.VRAM)])
      const data = pattern(64 * KiB, 7)
      yield* Reserve.withReserved(bo, (h) =>
        Effect.gen(function* () {
          yield* Access.write(h, bo, data)
          yield* Validate.validate(h, bo, [place(MemType.TT)])
          assert.strictEqual(bo.resource?.memType, MemType.TT)
          yield* Validate.validate(h, bo, [place(MemType.SYSTEM)])
          assert.strictEqual(bo.resource?.memType, MemType.SYSTEM)
          yield* Validate.validate(h, bo, [place(MemType.VRAM)])
          const back = yield* Access.readback(h, bo)
          assert.deepStrictEqual(back, data)
          assert.strictEqual(yield* Access.checksum(h, bo), Access.checksumOf(data))
        })
      )
    })
  )
})
