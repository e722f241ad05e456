/**
 * Mirrors the kernel's KUnit suite `ttm_bo_validate` (drivers/gpu/drm/ttm/tests/
 * ttm_bo_validate_test.c) scenario by scenario, on real GPU buffers.
 */

import { Device, Fence, Lifecycle, Pin, Reserve, Validate } from "@drmkit/ttm-placement"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit } from "effect"
import { bo, KiB, kunitDevice, MemType, MiB, MOCK1, MOCK2, PAGE_SIZE, PlaceFlags, place, validate } from "./helpers.ts"

const BO_SIZE = 4 * KiB
const types = ["device", "kernel", "sg"] as const

describe("ttm_bo_validate", () => {
  for (const type of types) {
    it.live(`init_reserved_sys_man (${type})`, () =>
      Effect.gen(function* () {
        const dev = yield* kunitDevice([])
        const ctx = Device.opCtx()
        const b = yield* Lifecycle.create(dev, { size: BO_SIZE, type }, [place(MemType.SYSTEM)], { ctx })
        assert.strictEqual(b.type, type)
        assert.strictEqual(b.pinCount, 0)
        assert.isUndefined(b.bulkMove)
        assert.isDefined(b.tt)
        assert.strictEqual(ctx.bytesMoved, BO_SIZE)
        assert.strictEqual(b.resource?.memType, MemType.SYSTEM)
      })
    )
    it.live(`init_reserved_mock_man (${type})`, () =>
      Effect.gen(function* () {
        const dev = yield* kunitDevice([MemType.VRAM])
        const ctx = Device.opCtx()
        const b = yield* Lifecycle.create(dev, { size: BO_SIZE, type }, [place(MemType.VRAM)], { ctx })
        assert.strictEqual(ctx.bytesMoved, BO_SIZE)
        assert.strictEqual(b.resource?.memType, MemType.VRAM)
        assert.strictEqual(dev.manager(MemType.VRAM)?.usage, BO_SIZE)
      })
    )
    it.live(`validate_basic (${type})`, () =>
      Effect.gen(function* () {
        const dev = yield* kunitDevice([MemType.VRAM])
        const b = yield* bo(dev, 8 * KiB, [place(MemType.SYSTEM)], { type })
        const ctx = yield* validate(b, [place(MemType.VRAM, { flags: PlaceFlags.TOPDOWN })])
        assert.strictEqual(ctx.bytesMoved, b.size)
        assert.strictEqual(b.resource?.memType, MemType.VRAM)
        assert.strictEqual(b.resource?.placement, PlaceFlags.TOPDOWN)
        assert.strictEqual(b.resource?.start, MiB / PAGE_SIZE - 2, "top-down lands at the end")
      })
    )
    it.live(`multihop VRAM -> TT -> SYSTEM counts two moves (${type})`, () =>
      Effect.gen(function* () {
        const dev = yield* kunitDevice([MemType.VRAM, MemType.TT])
        const b = yield* bo(dev, BO_SIZE, [place(MemType.VRAM)], { type })
        const ctx = yield* validate(b, [place(MemType.SYSTEM)])
        assert.strictEqual(ctx.bytesMoved, 2 * BO_SIZE)
        assert.strictEqual(b.resource?.memType, MemType.SYSTEM)
        yield* Device.drain(dev)
        assert.strictEqual(dev.manager(MemType.TT)?.usage, 0, "the TEMPORARY hop resource is released")
      })
    )
  }

  it.live("init_reserved_resv: a shared resv held by the caller", () =>
    Effect.gen(function* () {
      const dev = yield* kunitDevice([])
      const resv = Reserve.makeResv("vm")
      const b = yield* Effect.scoped(
        Effect.gen(function* () {
          const h = yield* Reserve.lockedResv(resv)
          return yield* Lifecycle.create(dev, { size: BO_SIZE, resv }, [place(MemType.SYSTEM)], { held: h })
        })
      )
      assert.strictEqual(b.resv, resv)
    })
  )

  it.live("invalid_placement: a type without a manager is skipped -> NoMemory", () =>
    Effect.gen(function* () {
      const dev = yield* kunitDevice([])
      const b = yield* bo(dev, BO_SIZE, [place(MemType.SYSTEM)])
      const exit = yield* Effect.exit(validate(b, [place(MemType.PRIV + 1)]))
      assert.deepStrictEqual(
        Exit.isFailure(exit) && exit.cause.reasons[0]?._tag === "Fail" ? exit.cause.reasons[0].error._tag : "",
        "NoMemory"
      )
    })
  )

  it.live("failed_alloc: a manager that never fits -> NoMemory, nothing changed", () =>
    Effect.gen(function* () {
      const dev = yield* kunitDevice([], { bad: [MemType.VRAM] })
      const b = yield* bo(dev, BO_SIZE, [place(MemType.SYSTEM)])
      const err = yield* Effect.flip(validate(b, [place(MemType.VRAM)]))
      assert.strictEqual(err._tag, "NoMemory")
      assert.strictEqual(b.resource?.memType, MemType.SYSTEM)
    })
  )

  it.live("pinned: incompatible -> Invalid; compatible -> ok (compatibility before the pin check)", () =>
    Effect.gen(function* () {
      const dev = yield* kunitDevice([MemType.VRAM])
      const b = yield* bo(dev, BO_SIZE, [place(MemType.SYSTEM)])
      yield* Reserve.withReserved(b, (h) =>
        Effect.gen(function* () {
          yield* Pin.pin(h, b)
          const err = yield* Effect.flip(Validate.validate(h, b, [place(MemType.VRAM)]))
          assert.strictEqual(err._tag, "Invalid")
          const ctx = Device.opCtx()
          yield* Validate.validate(h, b, [place(MemType.VRAM), place(MemType.SYSTEM)], ctx)
          assert.strictEqual(ctx.bytesMoved, 0)
          yield* Pin.unpin(h, b)
        })
      )
    })
  )

  for (const t of [MemType.SYSTEM, MemType.VRAM]) {
    it.live(`same_placement (${t === 0 ? "system" : "vram"}): no move, bytesMoved 0`, () =>
      Effect.gen(function* () {
        const dev = yield* kunitDevice([MemType.VRAM])
        const b = yield* bo(dev, BO_SIZE, [place(t)])
        const ctx = yield* validate(b, [place(t)])
        assert.strictEqual(ctx.bytesMoved, 0)
      })
    )
  }

  it.live("busy_placement: DESIRED bad manager, FALLBACK mock -> fallback", () =>
    Effect.gen(function* () {
      const dev = yield* kunitDevice([MemType.VRAM + 1], { bad: [MemType.VRAM] })
      const b = yield* bo(dev, BO_SIZE, [place(MemType.SYSTEM)])
      const ctx = yield* validate(b, [
        place(MemType.VRAM, { flags: PlaceFlags.DESIRED }),
        place(MemType.VRAM + 1, { flags: PlaceFlags.FALLBACK })
      ])
      assert.strictEqual(ctx.bytesMoved, BO_SIZE)
      assert.strictEqual(b.resource?.memType, MemType.VRAM + 1)
      assert.strictEqual(dev.manager(MemType.VRAM + 1)?.lru.list(b.priority).length, 1)
    })
  )

  it.live("no_placement (idle): purge, bytesMoved 0, usage back to 0", () =>
    Effect.gen(function* () {
      const dev = yield* kunitDevice([MemType.VRAM])
      const b = yield* bo(dev, BO_SIZE, [place(MemType.VRAM)])
      const ctx = yield* validate(b, [])
      assert.isUndefined(b.resource)
      assert.isDefined(b.tt)
      assert.strictEqual(ctx.bytesMoved, 0)
      yield* Device.drain(dev)
      assert.strictEqual(dev.manager(MemType.VRAM)?.usage, 0)
    })
  )

  it.live("no_placement (busy): backing freed only when the fence signals (ghost)", () =>
    Effect.gen(function* () {
      const dev = yield* kunitDevice([MemType.VRAM])
      const b = yield* bo(dev, BO_SIZE, [place(MemType.VRAM)])
      yield* Device.drain(dev)
      const f = Fence.make()
      yield* Reserve.withReserved(b, (h) => Reserve.addFence(h, f, "bookkeep"))
      yield* validate(b, [])
      assert.isUndefined(b.resource)
      assert.strictEqual(dev.manager(MemType.VRAM)?.usage, BO_SIZE, "ghost still holds it")
      f.signal()
      assert.strictEqual(dev.manager(MemType.VRAM)?.usage, 0)
    })
  )

  for (const noWaitGpu of [false, true]) {
    it.live(`move_fence_not_signaled (${noWaitGpu ? "noWaitGpu: fallback" : "waits: desired"})`, () =>
      Effect.gen(function* () {
        const dev = yield* kunitDevice([MemType.VRAM, MemType.VRAM + 1])
        const b = yield* bo(dev, BO_SIZE, [place(MemType.SYSTEM)])
        const man = dev.manager(MemType.VRAM)
        const f = Fence.make()
        if (man) man.moveFence = f
        const ctx = yield* validate(
          b,
          [place(MemType.VRAM, { flags: PlaceFlags.DESIRED }), place(MemType.VRAM + 1, { flags: PlaceFlags.FALLBACK })],
          Device.opCtx({ noWaitGpu })
        )
        setTimeout(() => f.signal(), 20)
        yield* Effect.promise(() => Fence.signaled(f))
        assert.strictEqual(ctx.bytesMoved, BO_SIZE)
        assert.strictEqual(b.resource?.memType, noWaitGpu ? MemType.VRAM + 1 : MemType.VRAM)
        assert.isFalse(Reserve.isIdle(b.resv) && !noWaitGpu && !f.isSignaled)
      })
    )
  }

  it.live("happy_evict: only the oldest (8 KiB) BO is evicted, via the TT hop", () =>
    Effect.gen(function* () {
      const dev = yield* kunitDevice([MemType.VRAM, MemType.TT])
      const small = yield* bo(dev, 8 * KiB, [place(MemType.VRAM)])
      const medium = yield* bo(dev, 512 * KiB, [place(MemType.VRAM)])
      const big = yield* bo(dev, MiB - 520 * KiB, [place(MemType.VRAM)])
      const v = yield* bo(dev, BO_SIZE, [place(MemType.SYSTEM)])
      const ctx = yield* validate(v, [place(MemType.VRAM)])
      assert.strictEqual(small.resource?.memType, MemType.SYSTEM)
      assert.strictEqual(medium.resource?.memType, MemType.VRAM)
      assert.strictEqual(big.resource?.memType, MemType.VRAM)
      assert.strictEqual(ctx.bytesMoved, 2 * 8 * KiB + BO_SIZE)
    })
  )

  it.live("all_pinned_evict: NoMemory, nothing touched", () =>
    Effect.gen(function* () {
      const dev = yield* kunitDevice([MemType.VRAM, MemType.TT])
      const big = yield* bo(dev, MiB, [place(MemType.VRAM)])
      yield* Reserve.withReserved(big, (h) => Pin.pin(h, big))
      const small = yield* bo(dev, BO_SIZE, [place(MemType.SYSTEM)])
      const err = yield* Effect.flip(validate(small, [place(MemType.VRAM)]))
      assert.strictEqual(err._tag, "NoMemory")
      assert.strictEqual(small.resource?.memType, MemType.SYSTEM)
      assert.strictEqual(big.resource?.memType, MemType.VRAM)
    })
  )

  it.live("allowed_only_evict: the pinned BO stays, the evictable one goes", () =>
    Effect.gen(function* () {
      const dev = yield* kunitDevice([MemType.VRAM, MemType.TT])
      const pinned = yield* bo(dev, 512 * KiB, [place(MemType.VRAM)])
      yield* Reserve.withReserved(pinned, (h) => Pin.pin(h, pinned))
      const evictable = yield* bo(dev, 512 * KiB, [place(MemType.VRAM)])
      const v = yield* bo(dev, BO_SIZE, [place(MemType.SYSTEM)])
      const ctx = yield* validate(v, [place(MemType.VRAM)])
      assert.strictEqual(v.resource?.memType, MemType.VRAM)
      assert.strictEqual(pinned.resource?.memType, MemType.VRAM)
      assert.strictEqual(evictable.resource?.memType, MemType.SYSTEM)
      assert.strictEqual(ctx.bytesMoved, 2 * 512 * KiB + BO_SIZE)
    })
  )

  it.live("deleted_evict: a zombie is reclaimed, not moved", () =>
    Effect.gen(function* () {
      const dev = yield* kunitDevice([MemType.VRAM])
      const big = yield* bo(dev, MiB - BO_SIZE, [place(MemType.VRAM)])
      const f = Fence.make()
      yield* Reserve.withReserved(big, (h) => Reserve.addFence(h, f, "bookkeep"))
      yield* Lifecycle.release(big)
      assert.isTrue(big.deleted)
      setTimeout(() => f.signal(), 5)
      const small = yield* bo(dev, 8 * KiB, [place(MemType.VRAM)])
      assert.strictEqual(small.resource?.memType, MemType.VRAM)
      assert.strictEqual(dev.manager(MemType.VRAM)?.usage, 8 * KiB)
      assert.isUndefined(big.resource)
      assert.isUndefined(big.tt)
    })
  )

  it.live("busy_domain_evict: the eviction target is full -> NoMemory, victim stays", () =>
    Effect.gen(function* () {
      const dev = yield* kunitDevice([MemType.VRAM], { bad: [MOCK1], funcs: { evictFlags: () => [place(MOCK1)] } })
      const init = yield* bo(dev, MiB, [place(MemType.VRAM)])
      const v = yield* bo(dev, BO_SIZE, [place(MemType.SYSTEM)])
      const err = yield* Effect.flip(validate(v, [place(MemType.VRAM)]))
      assert.strictEqual(err._tag, "NoMemory")
      assert.strictEqual(init.resource?.memType, MemType.VRAM)
      assert.strictEqual(v.resource?.memType, MemType.SYSTEM)
    })
  )

  it.live("evict_gutting: MOCK1 victims are purged (empty evict placement)", () =>
    Effect.gen(function* () {
      const dev = yield* kunitDevice([MOCK1])
      const victim = yield* bo(dev, MiB, [place(MOCK1)])
      const b = yield* bo(dev, BO_SIZE, [place(MOCK1)])
      assert.strictEqual(b.resource?.memType, MOCK1)
      assert.isUndefined(victim.resource)
      assert.isDefined(victim.tt)
    })
  )

  it.live("recursive_evict: TT victim evicts into full MOCK2, which evicts to SYSTEM", () =>
    Effect.gen(function* () {
      const dev = yield* kunitDevice([MemType.TT, MOCK2])
      const tt = yield* bo(dev, MiB, [place(MemType.TT)])
      const mock = yield* bo(dev, MiB, [place(MOCK2)])
      const v = yield* bo(dev, BO_SIZE, [place(MemType.TT)])
      assert.strictEqual(v.resource?.memType, MemType.TT)
      assert.strictEqual(tt.resource?.memType, MOCK2)
      assert.strictEqual(mock.resource?.memType, MemType.SYSTEM)
    })
  )
})
