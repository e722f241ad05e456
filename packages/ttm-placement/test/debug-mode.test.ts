/**
 * The GPU device in debug mode (@drmkit/gpu option `debug: true`, as `DRMKIT_GPU_DEBUG=1`: error
 * scopes around every submission, so a multi-piece job's later pieces are submitted
 * asynchronously): a new BO's zero-fill and a move inside one arena run in several pieces, and a
 * write right after them must still land after every piece.
 */

import { GpuDevice } from "@drmkit/gpu"
import { Access, Device, Lifecycle, Reserve } from "@drmkit/ttm-placement"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { bo, deviceConfig, KiB, MemType, PAGE_SIZE, pattern, place, validate, write } from "./helpers.ts"

const S = 256 * KiB
const vram = [place(MemType.VRAM)]

/** A TTM device on a @drmkit/gpu device opened in debug mode, both for the test's scope. */
const debugDevice = Effect.flatMap(GpuDevice.make({ debug: true, label: "ttm-debug" }).pipe(Effect.orDie), (gpu) =>
  Device.make({ ...deviceConfig(), gpu })
)

/** A 1 MiB VRAM whose free space is two 256 KiB holes apart (the BOs between are `keep`). */
const fragmented = Effect.gen(function* () {
  const dev = yield* debugDevice
  assert.isTrue(dev.storage.gpu.gpu.debug, "the GPU device is in debug mode")
  const bos = []
  for (let i = 0; i < 4; i++) bos.push(yield* bo(dev, S, vram))
  for (const i of [0, 2]) yield* Lifecycle.release(bos[i] as (typeof bos)[number])
  yield* Lifecycle.flushDelayed(dev)
  return { dev, keep: [bos[1], bos[3]] }
})

const readback = (b: Parameters<typeof Access.readback>[1]) => Reserve.withReserved(b, (h) => Access.readback(h, b))

describe("debug mode (DRMKIT_GPU_DEBUG)", () => {
  it.live("a new BO's zero-fill over two segments completes before its first write", () =>
    Effect.gen(function* () {
      const { dev } = yield* fragmented
      // One reservation held across create and write (as xe-lite's VM-private BOs): the write is
      // scheduled while the zero-fill's later piece still waits for its error-scope check.
      const resv = Reserve.makeResv("vm")
      const held = yield* Reserve.lockedResv(resv)
      const b = yield* Lifecycle.create(dev, { size: 2 * S, resv }, vram, { held })
      assert.strictEqual(b.resource?.segments.length, 2, "two segments")
      const data = pattern(2 * S, 7)
      yield* Access.write(held, b, data)
      yield* Device.drain(dev) // every piece done: a readback no longer races the fill
      const back = yield* Access.readback(held, b)
      assert.strictEqual(Access.checksumOf(back.subarray(S)), Access.checksumOf(data.subarray(S)), "second segment")
      assert.strictEqual(Access.checksumOf(back), Access.checksumOf(data))
    }).pipe(Effect.scoped)
  )

  it.live("a move inside one arena in two pieces completes before the next write", () =>
    Effect.gen(function* () {
      const { dev, keep } = yield* fragmented
      const b = yield* bo(dev, 2 * S, vram)
      yield* Device.drain(dev) // the zero-fill is done: only the move races below
      yield* write(b, pattern(2 * S, 9))
      for (const k of keep) if (k !== undefined) yield* Lifecycle.release(k)
      yield* Lifecycle.flushDelayed(dev)
      const before = b.resource?.segments.map((s) => s.start * PAGE_SIZE) ?? []
      assert.strictEqual(before.length, 2)
      // Allowed: from the first to the end of the last 256 KiB hole b does not use (it leaves
      // out one of b's segments); the copy runs in one piece per segment.
      const holes = [0, S, 2 * S, 3 * S].filter((o) => !before.includes(o))
      const lo = holes[0] ?? 0
      const hi = holes[1] ?? 0
      yield* validate(b, [{ ...place(MemType.VRAM), fpfn: lo / PAGE_SIZE, lpfn: (hi + S) / PAGE_SIZE }])
      const after = b.resource?.segments.map((s) => s.start * PAGE_SIZE) ?? []
      assert.deepStrictEqual(after, hi === lo + S ? [lo] : [lo, hi], "moved inside VRAM")
      const data = pattern(2 * S, 11)
      yield* write(b, data)
      yield* Device.drain(dev)
      const back = yield* readback(b)
      assert.strictEqual(Access.checksumOf(back.subarray(S)), Access.checksumOf(data.subarray(S)), "second segment")
      assert.strictEqual(Access.checksumOf(back), Access.checksumOf(data))
    })
  )
})
