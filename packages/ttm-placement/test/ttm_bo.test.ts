/**
 * Mirrors KUnit `ttm_bo` (drivers/gpu/drm/ttm/tests/ttm_bo_test.c): reserve variants, unreserve
 * LRU placement, pin/unpin (LRU and bulk), bulk move, put with a shared resv.
 */

import { Task } from "@drmkit/resv-locking"
import { Device, Lifecycle, Lru, Pin, Reserve } from "@drmkit/ttm-placement"
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Fiber } from "effect"
import { bo, KiB, MemType, makeDevice, place } from "./helpers.ts"

const S = 64 * KiB
const vram = [place(MemType.VRAM)]
const lruNames = (dev: Device.Device, prio = 0) =>
  (dev.manager(MemType.VRAM)?.lru.list(prio) ?? []).map((r) => [...dev.bos].find((b) => b.resource === r)?.name)

describe("ttm_bo", () => {
  it.live("reserve_optimistic_no_ticket / locked_no_sleep (noWait → Busy)", () =>
    Effect.gen(function* () {
      const dev = yield* makeDevice()
      const b = yield* bo(dev, S, vram)
      const h = yield* Reserve.reserve(b)
      assert.isTrue(Reserve.isHeld(h))
      const err = yield* Effect.flip(Reserve.reserve(b, { noWait: true }))
      assert.strictEqual(err._tag, "Busy")
      yield* Reserve.unlock(h)
      yield* Reserve.unlock(yield* Reserve.reserve(b, { noWait: true }))
    })
  )

  it.live("reserve_no_wait_ticket: noWait with a ticket is Invalid", () =>
    Effect.gen(function* () {
      const dev = yield* makeDevice()
      const b = yield* bo(dev, S, vram)
      const err = yield* Effect.scoped(
        Effect.flatMap(Reserve.acquireTicket(), (ticket) => Effect.flip(Reserve.reserve(b, { noWait: true, ticket })))
      )
      assert.strictEqual(err._tag, "Invalid")
    })
  )

  it.live("reserve_double_resv: Already with the same ticket", () =>
    Effect.gen(function* () {
      const dev = yield* makeDevice()
      const b = yield* bo(dev, S, vram)
      yield* Effect.scoped(
        Effect.gen(function* () {
          const t = yield* Reserve.acquireTicket()
          const h = yield* Reserve.reserve(b, { ticket: t })
          const err = yield* Effect.flip(Reserve.reserve(b, { ticket: t }))
          assert.strictEqual(err._tag, "Already")
          yield* Reserve.unlock(h)
        })
      )
    })
  )

  it.live("reserve_deadlock: the younger ticket backs off with Deadlock", () =>
    Effect.gen(function* () {
      const dev = yield* makeDevice()
      const b1 = yield* bo(dev, S, vram)
      const b2 = yield* bo(dev, S, vram)
      const holding = yield* Deferred.make<void>()
      const done = yield* Deferred.make<void>()
      const older = yield* Effect.forkChild(
        Effect.scoped(
          Effect.gen(function* () {
            const t = yield* Reserve.acquireTicket()
            const h1 = yield* Reserve.reserve(b1, { ticket: t })
            yield* Deferred.succeed(holding, undefined)
            yield* Deferred.await(done)
            yield* Reserve.unlock(yield* Reserve.reserve(b2, { ticket: t }))
            yield* Reserve.unlock(h1)
          })
        )
      )
      yield* Deferred.await(holding)
      yield* Effect.scoped(
        Effect.gen(function* () {
          const younger = yield* Reserve.acquireTicket()
          const h2 = yield* Reserve.reserve(b2, { ticket: younger })
          const err = yield* Effect.flip(Reserve.reserve(b1, { ticket: younger }))
          assert.strictEqual(err._tag, "Deadlock")
          yield* Reserve.unlock(h2)
        })
      )
      yield* Deferred.succeed(done, undefined)
      yield* Fiber.join(older)
    })
  )

  it.live("reserve_interrupted: a signal while sleeping fails an interruptible reserve with Interrupted", () =>
    Effect.gen(function* () {
      const dev = yield* makeDevice()
      const b = yield* bo(dev, S, vram)
      const h = yield* Reserve.reserve(b)
      const task = yield* Deferred.make<number>()
      const waiter = yield* Effect.forkChild(
        Effect.gen(function* () {
          yield* Deferred.succeed(task, yield* Task.current)
          return yield* Effect.flip(Reserve.reserve(b, { interruptible: true }))
        })
      )
      const id = yield* Deferred.await(task)
      yield* Effect.sleep("5 millis")
      yield* Task.signal(id)
      const err = yield* Fiber.join(waiter)
      assert.strictEqual(err._tag, "Interrupted")
      yield* Reserve.unlock(h)
    })
  )

  it.live("unreserve_basic: moves the BO to the LRU tail", () =>
    Effect.gen(function* () {
      const dev = yield* makeDevice()
      const a = yield* bo(dev, S, vram, { name: "a" })
      yield* bo(dev, S, vram, { name: "b" })
      assert.deepStrictEqual(lruNames(dev), ["a", "b"])
      yield* Reserve.withReserved(a, () => Effect.void)
      assert.deepStrictEqual(lruNames(dev), ["b", "a"])
    })
  )

  it.live("unreserve_pinned / pin_basic: pinned leaves the LRU; last unpin returns to the tail", () =>
    Effect.gen(function* () {
      const dev = yield* makeDevice()
      const a = yield* bo(dev, S, vram, { name: "a" })
      yield* bo(dev, S, vram, { name: "b" })
      yield* Reserve.withReserved(a, (h) => Pin.pin(h, a))
      assert.strictEqual(a.pinCount, 1)
      assert.deepStrictEqual(lruNames(dev), ["b"])
      assert.strictEqual(a.resource?.where, "unevictable")
      yield* bo(dev, S, vram, { name: "c" })
      yield* Reserve.withReserved(a, (h) => Pin.unpin(h, a))
      assert.deepStrictEqual(lruNames(dev), ["b", "c", "a"])
    })
  )

  it.live("pin_unpin_multiple: counted; unpin at 0 does nothing", () =>
    Effect.gen(function* () {
      const dev = yield* makeDevice()
      const a = yield* bo(dev, S, vram)
      yield* Reserve.withReserved(a, (h) =>
        Effect.gen(function* () {
          yield* Pin.pin(h, a)
          yield* Pin.pin(h, a)
          assert.isTrue(yield* Pin.unpin(h, a))
          assert.strictEqual(a.pinCount, 1)
          assert.strictEqual(a.resource?.where, "unevictable")
          assert.isTrue(yield* Pin.unpin(h, a))
          assert.isFalse(yield* Pin.unpin(h, a))
          assert.strictEqual(a.pinCount, 0)
        })
      )
    })
  )

  it.live("pin without the lock dies (dma_resv_assert_held)", () =>
    Effect.gen(function* () {
      const dev = yield* makeDevice()
      const a = yield* bo(dev, S, vram)
      const b = yield* bo(dev, S, vram)
      const h = yield* Reserve.reserve(b)
      const exit = yield* Effect.exit(Pin.pin(h, a))
      assert.isTrue(exit._tag === "Failure")
      yield* Reserve.unlock(h)
    })
  )

  it.live("bulk move: the group sits together and moves to the tail in O(1); pin leaves it", () =>
    Effect.gen(function* () {
      const dev = yield* makeDevice()
      const vm = Reserve.makeResv("vm")
      const bulk = Pin.makeBulkMove()
      const x = yield* bo(dev, S, vram, { name: "x" })
      const h = yield* Reserve.reserveResv(vm)
      const g1 = yield* Lifecycle.create(dev, { size: S, resv: vm, name: "g1" }, vram, { held: h })
      const y = yield* bo(dev, S, vram, { name: "y" })
      const g2 = yield* Lifecycle.create(dev, { size: S, resv: vm, name: "g2" }, vram, { held: h })
      yield* Pin.setBulkMove(h, g1, bulk)
      yield* Pin.setBulkMove(h, g2, bulk)
      assert.deepStrictEqual(lruNames(dev), ["x", "g1", "g2", "y"])
      Pin.bulkMoveTail(g1, bulk)
      assert.deepStrictEqual(lruNames(dev), ["x", "y", "g1", "g2"])
      void x
      void y
      yield* Pin.pin(h, g1)
      assert.strictEqual(bulk.count, 1)
      Pin.bulkMoveTail(g1, bulk)
      assert.deepStrictEqual(lruNames(dev), ["x", "y", "g2"])
      yield* Pin.unpin(h, g1)
      assert.strictEqual(bulk.count, 2)
      assert.deepStrictEqual(lruNames(dev), ["x", "y", "g2", "g1"])
      yield* Pin.setBulkMove(h, g1, undefined)
      yield* Pin.setBulkMove(h, g2, undefined)
      assert.isTrue(bulk.isEmpty)
      yield* Reserve.unlock(h)
      assert.instanceOf(bulk, Lru.BulkMove)
    })
  )

  it.live("put_basic / put_shared_resv: idle BOs are freed at once; a shared resv stays usable", () =>
    Effect.gen(function* () {
      const dev = yield* makeDevice()
      const vm = Reserve.makeResv("vm")
      const h = yield* Reserve.reserveResv(vm)
      const a = yield* Lifecycle.create(dev, { size: S, resv: vm }, vram, { held: h })
      yield* Reserve.unlock(h)
      yield* Device.drain(dev)
      yield* Lifecycle.release(a)
      assert.isTrue(a.destroyed)
      assert.isFalse(dev.bos.has(a))
      assert.strictEqual(dev.manager(MemType.VRAM)?.usage, 0)
      yield* Reserve.unlock(yield* Reserve.reserveResv(vm))
    })
  )
})
