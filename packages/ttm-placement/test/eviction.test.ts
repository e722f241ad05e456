/**
 * Eviction rules of ttm-dmabuf.md §2.3–§2.5: order by priority then LRU, busy victims with and
 * without `noWaitGpu`, own-transaction BOs (and `allowResEvict`), ticket contention → NoMemory,
 * pipelined eviction, evict-all — with contents checked on the GPU.
 */

import { Task } from "@drmkit/resv-locking"
import {
  Access,
  type BufferObject,
  Device,
  Eviction,
  Fence,
  Lifecycle,
  Pin,
  Reserve,
  Validate
} from "@drmkit/ttm-placement"
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Fiber } from "effect"
import { bo, checksum, KiB, MemType, MiB, makeDevice, PAGE_SIZE, pattern, place, validate, write } from "./helpers.ts"

const Q = 256 * KiB
const vram = [place(MemType.VRAM)]

const fill = (dev: Device.Device, priorities: ReadonlyArray<number>) =>
  Effect.forEach(priorities, (priority, i) => bo(dev, Q, vram, { priority, name: `p${priority}#${i}` }))

/**
 * Validates `b` into VRAM under an older ticket while a younger ticket holds `contended` for 20 ms:
 * the walk's one blocking ticket lock waits for it (wait-die: the older waits).
 */
const validateOlderWhileYoungerHolds = (b: BufferObject.Bo, contended: BufferObject.Bo) =>
  Effect.scoped(
    Effect.gen(function* () {
      const locked = yield* Deferred.make<void>()
      const older = yield* Reserve.acquireTicket()
      const holder = yield* Effect.forkChild(
        Effect.scoped(
          Effect.gen(function* () {
            const younger = yield* Reserve.acquireTicket()
            const h = yield* Reserve.reserve(contended, { ticket: younger })
            yield* Deferred.succeed(locked, undefined)
            yield* Effect.sleep("20 millis")
            yield* Reserve.unlock(h)
          })
        )
      )
      yield* Deferred.await(locked)
      yield* Effect.addFinalizer(() => Fiber.join(holder).pipe(Effect.orDie))
      const h = yield* Reserve.reserve(b, { ticket: older })
      yield* Effect.addFinalizer(() => Reserve.unlock(h))
      yield* Validate.validate(h, b, vram)
    })
  )

describe("eviction", () => {
  it.live("order: priority 0 first, then least recently used within a priority", () =>
    Effect.gen(function* () {
      const dev = yield* makeDevice({ vram: MiB })
      const [a, b, c, d] = yield* fill(dev, [2, 0, 1, 0])
      const order: Array<string> = []
      for (let i = 0; i < 4; i++) {
        yield* bo(dev, Q, vram, { priority: 3 })
        for (const x of [a, b, c, d])
          if (x?.resource?.memType === MemType.TT && !order.includes(x.name)) order.push(x.name)
      }
      assert.deepStrictEqual(order, ["p0#1", "p0#3", "p1#2", "p2#0"])
    })
  )

  it.live("unreserve bumps to the LRU tail", () =>
    Effect.gen(function* () {
      const dev = yield* makeDevice({ vram: MiB })
      const [a, b] = yield* fill(dev, [0, 0, 0, 0])
      yield* Reserve.withReserved(a as never, () => Effect.void)
      yield* bo(dev, Q, vram)
      assert.strictEqual(a?.resource?.memType, MemType.VRAM)
      assert.strictEqual(b?.resource?.memType, MemType.TT)
    })
  )

  it.live("default evictionValuable: only victims intersecting the requested fpfn..lpfn window go", () =>
    Effect.gen(function* () {
      const dev = yield* makeDevice({ vram: 2 * Q })
      const [older, younger] = yield* fill(dev, [0, 0])
      const start = younger?.resource?.start
      if (older === undefined || younger === undefined || start === undefined) return assert.fail("fill")
      const pages = Q / PAGE_SIZE
      const c = yield* bo(dev, Q, [place(MemType.VRAM, { fpfn: start, lpfn: start + pages })])
      assert.strictEqual(older.resource?.memType, MemType.VRAM, "the LRU head lies outside the window")
      assert.strictEqual(younger.resource?.memType, MemType.TT)
      assert.strictEqual(c.resource?.start, start)
    })
  )

  it.live("a driver evictionValuable hook that refuses a BO makes the walk skip it", () =>
    Effect.gen(function* () {
      const dev = yield* makeDevice({ vram: 2 * Q, funcs: { evictionValuable: (b) => b.name !== "keep" } })
      const keep = yield* bo(dev, Q, vram, { name: "keep" })
      const other = yield* bo(dev, Q, vram, { name: "other" })
      yield* bo(dev, Q, vram)
      assert.strictEqual(keep.resource?.memType, MemType.VRAM, "LRU head, but not valuable")
      assert.strictEqual(other.resource?.memType, MemType.TT)
    })
  )

  it.live("contents survive eviction (GPU checksums)", () =>
    Effect.gen(function* () {
      const dev = yield* makeDevice({ vram: MiB })
      const bos = yield* fill(dev, [0, 0, 0, 0])
      const data = bos.map((_, i) => pattern(Q, i + 1))
      yield* Effect.forEach(bos, (b, i) => write(b, data[i] as Uint8Array))
      yield* bo(dev, 2 * Q, vram)
      for (const [i, b] of bos.entries())
        assert.strictEqual(yield* checksum(b), Access.checksumOf(data[i] as Uint8Array))
      assert.strictEqual(bos.filter((b) => b.resource?.memType === MemType.TT).length, 2)
    })
  )

  it.live("busy victim: skipped with noWaitGpu, moved behind its fence without", () =>
    Effect.gen(function* () {
      const dev = yield* makeDevice({ vram: 2 * Q })
      const [busy, idle] = yield* fill(dev, [0, 0])
      if (busy === undefined || idle === undefined) return assert.fail("fill")
      const data = pattern(Q, 9)
      yield* write(busy, data)
      yield* Device.drain(dev)
      const f = Fence.make()
      yield* Reserve.withReserved(busy, (h) => Reserve.addFence(h, f, "write"))
      const n1 = yield* bo(dev, Q, [place(MemType.SYSTEM)])
      // The idle victim goes; the evictor may still get Busy-skipped on the pipelined move fence.
      yield* Effect.exit(validate(n1, vram, Device.opCtx({ noWaitGpu: true })))
      assert.strictEqual(busy.resource?.memType, MemType.VRAM, "busy one skipped")
      assert.strictEqual(idle.resource?.memType, MemType.TT)
      yield* validate(n1, vram)
      const n2 = yield* bo(dev, Q, [place(MemType.SYSTEM)])
      yield* validate(n2, vram)
      assert.strictEqual(busy.resource?.memType, MemType.TT, "moved anyway, queued behind the fence")
      f.signal()
      assert.strictEqual(yield* checksum(busy), Access.checksumOf(data))
    })
  )

  it.live("own-transaction BOs are never victims; allowResEvict lets shared-resv BOs go", () =>
    Effect.gen(function* () {
      const dev = yield* makeDevice({ vram: 2 * Q })
      const vm = Reserve.makeResv("vm")
      yield* Effect.scoped(
        Effect.gen(function* () {
          const ticket = yield* Reserve.acquireTicket()
          const h = yield* Effect.acquireRelease(Reserve.reserveResv(vm, { ticket }).pipe(Effect.orDie), Reserve.unlock)
          const a = yield* Lifecycle.create(dev, { size: 2 * Q, resv: vm }, vram, { held: h })
          const b = yield* Lifecycle.create(dev, { size: Q, resv: vm }, [place(MemType.SYSTEM)], { held: h })
          const err = yield* Effect.flip(Validate.validate(h, b, vram))
          assert.strictEqual(err._tag, "NoMemory")
          assert.strictEqual(a.resource?.memType, MemType.VRAM)
          yield* Validate.validate(h, b, vram, Device.opCtx({ allowResEvict: true, held: h }))
          assert.strictEqual(a.resource?.memType, MemType.TT)
          assert.strictEqual(b.resource?.memType, MemType.VRAM)
        })
      )
    })
  )

  it.live("ticket contention inside the walk ends it with NoMemory, never Deadlock", () =>
    Effect.gen(function* () {
      const dev = yield* makeDevice({ vram: Q })
      const victim = yield* bo(dev, Q, vram)
      const locked = yield* Deferred.make<void>()
      const release = yield* Deferred.make<void>()
      const holder = yield* Effect.forkChild(
        Effect.scoped(
          Effect.gen(function* () {
            const older = yield* Reserve.acquireTicket()
            const h = yield* Reserve.reserve(victim, { ticket: older })
            yield* Deferred.succeed(locked, undefined)
            yield* Deferred.await(release)
            yield* Reserve.unlock(h)
          })
        )
      )
      yield* Deferred.await(locked)
      const b = yield* bo(dev, Q, [place(MemType.SYSTEM)])
      const err = yield* Effect.flip(
        Effect.scoped(
          Effect.gen(function* () {
            const younger = yield* Reserve.acquireTicket()
            const h = yield* Reserve.reserve(b, { ticket: younger })
            yield* Effect.addFinalizer(() => Reserve.unlock(h))
            return yield* Validate.validate(h, b, vram)
          })
        )
      )
      assert.strictEqual(err._tag, "NoMemory")
      assert.strictEqual(victim.resource?.memType, MemType.VRAM)
      yield* Deferred.succeed(release, undefined)
      yield* Fiber.join(holder)
    })
  )

  it.live("an older ticket blocks once in the walk, then evicts", () =>
    Effect.gen(function* () {
      const dev = yield* makeDevice({ vram: Q })
      const victim = yield* bo(dev, Q, vram)
      const b = yield* bo(dev, Q, [place(MemType.SYSTEM)])
      yield* validateOlderWhileYoungerHolds(b, victim)
      assert.strictEqual(b.resource?.memType, MemType.VRAM)
      assert.strictEqual(victim.resource?.memType, MemType.TT)
    })
  )

  it.live("a trylock walk that evicted too little still goes on to the ticket walk (ttm_bo_evict_alloc)", () =>
    Effect.gen(function* () {
      const dev = yield* makeDevice({ vram: 2 * Q })
      const free = yield* bo(dev, Q, vram, { name: "free" })
      const contended = yield* bo(dev, Q, vram, { name: "contended" })
      const b = yield* bo(dev, 2 * Q, [place(MemType.SYSTEM)])
      // The trylock pass evicts `free` (not enough); the ticket walk then waits for `contended`.
      yield* validateOlderWhileYoungerHolds(b, contended)
      assert.strictEqual(b.resource?.memType, MemType.VRAM)
      assert.strictEqual(free.resource?.memType, MemType.TT)
      assert.strictEqual(contended.resource?.memType, MemType.TT)
    })
  )

  it.live("a signal while the walk sleeps in its ticket lock ends validate with Interrupted (interruptible ctx)", () =>
    Effect.gen(function* () {
      const dev = yield* makeDevice({ vram: Q })
      const victim = yield* bo(dev, Q, vram)
      const b = yield* bo(dev, Q, [place(MemType.SYSTEM)])
      const haveTicket = yield* Deferred.make<void>()
      const locked = yield* Deferred.make<void>()
      const release = yield* Deferred.make<void>()
      const validating = yield* Effect.forkChild(
        Effect.scoped(
          Effect.gen(function* () {
            const older = yield* Reserve.acquireTicket()
            yield* Deferred.succeed(haveTicket, undefined)
            yield* Deferred.await(locked)
            const h = yield* Reserve.reserve(b, { ticket: older })
            yield* Effect.addFinalizer(() => Reserve.unlock(h))
            return yield* Validate.validate(h, b, vram, Device.opCtx({ interruptible: true }))
          })
        )
      )
      const holder = yield* Effect.forkChild(
        Effect.scoped(
          Effect.gen(function* () {
            yield* Deferred.await(haveTicket)
            const younger = yield* Reserve.acquireTicket()
            const h = yield* Reserve.reserve(victim, { ticket: younger })
            yield* Deferred.succeed(locked, undefined)
            yield* Deferred.await(release)
            yield* Reserve.unlock(h)
          })
        )
      )
      yield* Effect.sleep("20 millis") // the older ticket now sleeps on the victim's lock
      yield* Task.signal(validating.id)
      const exit = yield* Fiber.await(validating)
      assert.isTrue(exit._tag === "Failure" && JSON.stringify(exit.cause).includes("Interrupted"), String(exit))
      assert.strictEqual(b.resource?.memType, MemType.SYSTEM, "nothing moved")
      assert.strictEqual(victim.resource?.memType, MemType.VRAM)
      yield* Deferred.succeed(release, undefined)
      yield* Fiber.join(holder)
    })
  )

  it.live("pipelined eviction: the manager remembers the move fence; later allocations depend on it", () =>
    Effect.gen(function* () {
      const dev = yield* makeDevice({ vram: Q })
      const victim = yield* bo(dev, Q, vram)
      const data = pattern(Q, 3)
      yield* write(victim, data)
      const gate = Fence.make()
      yield* Reserve.withReserved(victim, (h) => Reserve.addFence(h, gate, "write"))
      const b = yield* bo(dev, Q, vram)
      const man = dev.manager(MemType.VRAM)
      assert.isFalse(man?.moveFence?.isSignaled ?? true, "eviction still queued behind the gate")
      assert.isFalse(Reserve.isIdle(b.resv, "kernel"), "new BO depends on the pending eviction")
      gate.signal()
      assert.strictEqual(yield* checksum(victim), Access.checksumOf(data))
      assert.strictEqual(yield* checksum(b), Access.checksumOf(new Uint8Array(Q)))
    })
  )

  it.live("pipelined eviction: a later eviction does not drop the manager's pending earlier one", () =>
    Effect.gen(function* () {
      const dev = yield* makeDevice({ vram: 2 * Q })
      const v1 = yield* bo(dev, Q, vram, { name: "v1" })
      const v2 = yield* bo(dev, Q, vram, { name: "v2" })
      const reader = Fence.make() // a foreign reader of v1's VRAM pages
      yield* Reserve.withReserved(v1, (h) => Reserve.addFence(h, reader, "read"))
      yield* Reserve.withReserved(v2, () => Effect.void) // LRU: v1, v2
      yield* bo(dev, Q, vram) // evicts v1: its pages are free once the reader is done
      const c = yield* bo(dev, Q, vram) // evicts v2
      yield* checksum(v2) // v2's move has completed
      const man = dev.manager(MemType.VRAM)
      assert.isFalse(man?.moveFence?.isSignaled ?? true, "v1's reader still pending")
      assert.isFalse(Reserve.isIdle(c.resv, "kernel"), "new allocations wait for every pending eviction")
      reader.signal()
      assert.strictEqual(yield* checksum(c), Access.checksumOf(new Uint8Array(Q)))
    })
  )

  it.live("evictAll empties VRAM except pinned BOs; contents intact", () =>
    Effect.gen(function* () {
      const dev = yield* makeDevice({ vram: MiB })
      const bos = yield* fill(dev, [0, 1, 2, 3])
      const data = bos.map((_, i) => pattern(Q, 40 + i))
      yield* Effect.forEach(bos, (b, i) => write(b, data[i] as Uint8Array))
      const pinned = bos[2]
      if (pinned === undefined) return assert.fail("fill")
      yield* Reserve.withReserved(pinned, (h) => Pin.pin(h, pinned))
      const n = yield* Eviction.evictAll(dev, MemType.VRAM)
      assert.strictEqual(n, 3)
      assert.deepStrictEqual(
        bos.map((b) => b.resource?.memType),
        [MemType.TT, MemType.TT, MemType.VRAM, MemType.TT]
      )
      for (const [i, b] of bos.entries())
        assert.strictEqual(yield* checksum(b), Access.checksumOf(data[i] as Uint8Array))
    })
  )
})
