/**
 * `ttm_resource_manager_evict_all` on `ttm_bo_evict_first`: take the manager's LRU head, reserve it
 * with a blocking lock and no ticket (`ctx->no_wait_gpu` turns that into a trylock → `-EBUSY`),
 * evict it — or, for a zombie, wait for it and free it — and repeat until the LRU is empty
 * (`-ENOENT`); the first error ends the loop; then wait for the manager's move fence.
 */

import { Access, Device, Eviction, Fence, Lifecycle, Pin, Reserve } from "@drmkit/ttm-placement"
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Fiber } from "effect"
import { bo, checksum, KiB, MemType, MiB, makeDevice, pattern, place, write } from "./helpers.ts"

const Q = 256 * KiB
const vram = [place(MemType.VRAM)]
const tt = [place(MemType.TT)]

describe("evictAll (ttm_resource_manager_evict_all)", () => {
  it.live("a zombie is waited for and freed, not moved", () =>
    Effect.gen(function* () {
      const dev = yield* makeDevice({ vram: MiB })
      const a = yield* bo(dev, Q, vram)
      const live = yield* bo(dev, Q, vram)
      const f = Fence.make()
      yield* Reserve.withReserved(a, (h) => Reserve.addFence(h, f, "bookkeep"))
      yield* Lifecycle.release(a)
      assert.isTrue(a.deleted && !a.destroyed, "a zombie on the VRAM LRU")
      setTimeout(() => f.signal(), 5)
      const n = yield* Eviction.evictAll(dev, MemType.VRAM)
      assert.strictEqual(n, 2)
      assert.isTrue(a.destroyed, "freed (ttm_bo_cleanup_memtype_use)")
      assert.strictEqual(dev.stats.evictions, 1, "only the live BO was moved")
      assert.strictEqual(live.resource?.memType, MemType.TT)
      assert.strictEqual(dev.manager(MemType.TT)?.usage, Q, "the zombie was not copied to TT")
      assert.strictEqual(dev.manager(MemType.VRAM)?.usage, 0)
    })
  )

  it.live("repeats until the LRU is empty: a BO placed while it waits for a lock goes too", () =>
    Effect.gen(function* () {
      const dev = yield* makeDevice({ vram: MiB })
      const x = yield* bo(dev, Q, vram) // the LRU head
      const z = yield* bo(dev, Q, vram)
      const locked = yield* Deferred.make<void>()
      const go = yield* Deferred.make<void>()
      const holder = yield* Effect.forkChild(
        Reserve.withReserved(x, () =>
          Effect.gen(function* () {
            yield* Deferred.succeed(locked, undefined)
            yield* Deferred.await(go)
            return yield* bo(dev, Q, vram) // placed while evictAll waits for x
          })
        )
      )
      yield* Deferred.await(locked)
      const all = yield* Effect.forkChild(Eviction.evictAll(dev, MemType.VRAM))
      yield* Effect.sleep("5 millis") // evictAll blocks on x (no ticket)
      yield* Deferred.succeed(go, undefined)
      const y = yield* Fiber.join(holder)
      const n = yield* Fiber.join(all)
      assert.strictEqual(n, 3)
      for (const b of [x, z, y]) assert.strictEqual(b.resource?.memType, MemType.TT, b.name)
      assert.strictEqual(dev.manager(MemType.VRAM)?.usage, 0)
    })
  )

  it.live("a BO that cannot be evicted ends it with the error (nothing skipped)", () =>
    Effect.gen(function* () {
      const dev = yield* makeDevice({ vram: MiB, tt: Q })
      const p = yield* bo(dev, Q, tt) // TT is full and pinned: nowhere to evict to
      yield* Reserve.withReserved(p, (h) => Pin.pin(h, p))
      const a = yield* bo(dev, Q, vram)
      const b = yield* bo(dev, Q, vram)
      const da = pattern(Q, 1)
      yield* write(a, da)
      const e = yield* Effect.flip(Eviction.evictAll(dev, MemType.VRAM))
      assert.strictEqual(e._tag, "NoSpace")
      assert.strictEqual(a.resource?.memType, MemType.VRAM)
      assert.strictEqual(b.resource?.memType, MemType.VRAM)
      assert.strictEqual(dev.stats.evictions, 0)
      assert.strictEqual(yield* checksum(a), Access.checksumOf(da))
    })
  )

  it.live("noWaitGpu: a reserved BO is Busy (ttm_bo_reserve with no_wait)", () =>
    Effect.gen(function* () {
      const dev = yield* makeDevice({ vram: MiB })
      const x = yield* bo(dev, Q, vram)
      const locked = yield* Deferred.make<void>()
      const done = yield* Deferred.make<void>()
      const holder = yield* Effect.forkChild(
        Reserve.withReserved(x, () => Effect.andThen(Deferred.succeed(locked, undefined), Deferred.await(done)))
      )
      yield* Deferred.await(locked)
      const e = yield* Eviction.evictAll(dev, MemType.VRAM, Device.opCtx({ noWaitGpu: true })).pipe(
        Effect.timeout("200 millis"),
        Effect.flip
      )
      yield* Deferred.succeed(done, undefined)
      yield* Fiber.join(holder)
      assert.strictEqual(e._tag, "Busy", "no blocking lock")
      assert.strictEqual(x.resource?.memType, MemType.VRAM)
    })
  )

  it.live("pinned BOs are not on the LRU and stay", () =>
    Effect.gen(function* () {
      const dev = yield* makeDevice({ vram: MiB })
      const p = yield* bo(dev, Q, vram)
      yield* Reserve.withReserved(p, (h) => Pin.pin(h, p))
      const t = yield* bo(dev, Q, tt)
      assert.strictEqual(yield* Eviction.evictAll(dev, MemType.VRAM), 0)
      assert.strictEqual(p.resource?.memType, MemType.VRAM)
      assert.strictEqual(t.resource?.memType, MemType.TT)
    })
  )
})
