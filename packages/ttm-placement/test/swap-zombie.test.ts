/**
 * Swapout under the global populated-TT-page limit (KUnit `ttm_bo_validate_swapout`-like, §2.8),
 * swap-in on access, and zombies (delayed delete while busy, §2.7).
 */

import { Access, Device, Eviction, Fence, Lifecycle, Reserve } from "@drmkit/ttm-placement"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { bo, checksum, KiB, MemType, MiB, makeDevice, PAGE_SIZE, pattern, place, validate, write } from "./helpers.ts"

const S = 256 * KiB
const tt = [place(MemType.TT)]

describe("swapout", () => {
  it.live("exceeding the page limit swaps the LRU BO out; access swaps it back in intact", () =>
    Effect.gen(function* () {
      const dev = yield* makeDevice({ tt: 4 * MiB, pageLimit: (2 * S) / PAGE_SIZE })
      const a = yield* bo(dev, S, tt)
      const b = yield* bo(dev, S, tt)
      const da = pattern(S, 1)
      const db = pattern(S, 2)
      yield* write(a, da)
      yield* write(b, db)
      assert.strictEqual(dev.ttPages, (2 * S) / PAGE_SIZE)
      const c = yield* bo(dev, S, tt)
      assert.isTrue(a.swapped, "the oldest one was swapped")
      assert.strictEqual(a.resource?.memType, MemType.SYSTEM)
      assert.strictEqual(a.resource?.where, "unevictable")
      assert.isFalse(b.swapped)
      assert.strictEqual(dev.ttPages, (2 * S) / PAGE_SIZE)
      assert.strictEqual(dev.stats.swapouts, 1)
      assert.strictEqual(yield* checksum(a), Access.checksumOf(da), "swap-in on access")
      assert.isFalse(a.swapped)
      assert.strictEqual(a.resource?.where, "lru")
      assert.strictEqual(yield* checksum(b), Access.checksumOf(db))
      void c
    })
  )

  it.live("validate of a swapped BO into VRAM uploads its contents", () =>
    Effect.gen(function* () {
      const dev = yield* makeDevice()
      const a = yield* bo(dev, S, tt)
      const da = pattern(S, 5)
      yield* write(a, da)
      assert.isTrue(yield* Eviction.swapout(dev))
      assert.isTrue(a.swapped)
      yield* validate(a, [place(MemType.VRAM)])
      assert.strictEqual(a.resource?.memType, MemType.VRAM)
      assert.isFalse(a.swapped)
      assert.strictEqual(yield* checksum(a), Access.checksumOf(da))
    })
  )

  it.live("swapout is trylock only and skips pinned, sg and locked BOs", () =>
    Effect.gen(function* () {
      const dev = yield* makeDevice()
      const sg = yield* bo(dev, S, tt, { type: "sg" })
      const locked = yield* bo(dev, S, tt)
      const h = yield* Reserve.reserve(locked)
      assert.isFalse(yield* Eviction.swapout(dev))
      yield* Reserve.unlock(h)
      assert.isTrue(yield* Eviction.swapout(dev))
      assert.isTrue(locked.swapped)
      assert.isFalse(sg.swapped)
    })
  )
})

describe("zombies", () => {
  it.live("release while busy keeps the backing until the fence signals", () =>
    Effect.gen(function* () {
      const dev = yield* makeDevice()
      const vm = Reserve.makeResv("vm")
      const h = yield* Reserve.reserveResv(vm)
      const a = yield* Lifecycle.create(dev, { size: S, resv: vm }, [place(MemType.VRAM)], { held: h })
      const f = Fence.make()
      yield* Reserve.addFence(h, f, "read")
      yield* Reserve.unlock(h)
      yield* Lifecycle.release(a)
      assert.isTrue(a.deleted)
      assert.notStrictEqual(a.resv, vm, "individualised")
      assert.strictEqual(dev.manager(MemType.VRAM)?.usage, S)
      f.signal()
      yield* Device.drain(dev)
      yield* Effect.sleep("1 millis")
      assert.isTrue(a.destroyed)
      assert.strictEqual(dev.manager(MemType.VRAM)?.usage, 0)
      assert.isFalse(dev.bos.has(a))
    })
  )

  it.live("flushDelayed waits for zombies and frees them", () =>
    Effect.gen(function* () {
      const dev = yield* makeDevice()
      const a = yield* bo(dev, S, [place(MemType.VRAM)])
      const f = Fence.make()
      yield* Reserve.withReserved(a, (h) => Reserve.addFence(h, f, "bookkeep"))
      yield* Lifecycle.release(a)
      setTimeout(() => f.signal(), 5)
      yield* Lifecycle.flushDelayed(dev)
      assert.isTrue(a.destroyed)
    })
  )
})
