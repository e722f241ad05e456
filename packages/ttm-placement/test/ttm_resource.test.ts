/**
 * Mirrors KUnit `ttm_resource` (drivers/gpu/drm/ttm/tests/ttm_resource_test.c): resource init
 * (placement flags, LRU placement, usage), init pinned, fini, manager init/usage/set_used, the
 * system manager's alloc/free — plus drmkit's range/buddy manager contracts.
 */

import { Managers, Placement, ResourceManager } from "@drmkit/ttm-placement"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { bo, KiB, MemType, makeDevice, PAGE_SIZE, PlaceFlags, place } from "./helpers.ts"

const owner = { id: 1, priority: 0 }
const req = (numPages: number, alignPages = 1) => ({ numPages, alignPages, owner })

describe("ttm_resource", () => {
  for (const [name, flags] of [
    ["no flags", 0],
    ["TOPDOWN", PlaceFlags.TOPDOWN],
    ["CONTIGUOUS", PlaceFlags.CONTIGUOUS],
    ["TOPDOWN|CONTIGUOUS", PlaceFlags.TOPDOWN | PlaceFlags.CONTIGUOUS]
  ] as const) {
    it(`resource_init (${name}): placement copied, usage counted`, () => {
      const man = new ResourceManager.ResourceManager(MemType.VRAM, "vram", Managers.buddyBackend(256), false)
      const res = man.alloc(req(8), place(MemType.VRAM, { flags }))
      assert.instanceOf(res, Object)
      if (!("segments" in res)) return assert.fail("alloc failed")
      assert.strictEqual(res.placement, flags)
      assert.strictEqual(res.numPages, 8)
      assert.strictEqual(res.memType, MemType.VRAM)
      assert.strictEqual(man.usage, 8 * PAGE_SIZE)
      if (flags & PlaceFlags.CONTIGUOUS) assert.isTrue(res.contiguous)
      if (flags & PlaceFlags.TOPDOWN) assert.strictEqual(res.start + res.numPages, 256)
      man.free(res)
      assert.strictEqual(man.usage, 0)
      assert.throws(() => man.free(res))
    })
  }

  it.live("resource_init_pinned / fini: pinned resources live on the unevictable list", () =>
    Effect.gen(function* () {
      const dev = yield* makeDevice()
      const b = yield* bo(dev, 64 * KiB, [place(MemType.VRAM)])
      assert.strictEqual(b.resource?.where, "lru")
      assert.strictEqual(dev.manager(MemType.VRAM)?.lru.list(0).length, 1)
    })
  )

  it("manager_init / usage / set_used", () => {
    const man = new ResourceManager.ResourceManager(MemType.TT, "tt", Managers.rangeBackend(64), true)
    assert.strictEqual(man.size, 64 * PAGE_SIZE)
    assert.isTrue(man.useTt)
    assert.isTrue(man.used)
    assert.strictEqual(man.lru.all().length, 0)
    const r = man.alloc(req(4), place(MemType.TT))
    assert.strictEqual(man.usage, 4 * PAGE_SIZE)
    assert.strictEqual(man.setUsed(false)?._tag, "Invalid", "cannot disable with resources left")
    if ("segments" in r) man.free(r)
    assert.isUndefined(man.setUsed(false))
    assert.isFalse(man.used)
  })

  it("sys_man_alloc / free: never out of space", () => {
    const man = new ResourceManager.ResourceManager(MemType.SYSTEM, "system", ResourceManager.systemBackend(), true)
    const r = man.alloc(req(1 << 20), place(MemType.SYSTEM))
    assert.isTrue("segments" in r)
    if ("segments" in r) man.free(r)
    assert.strictEqual(man.usage, 0)
  })

  it("range manager: fpfn/lpfn window, alignment, TOPDOWN, compatible and intersects", () => {
    const man = new ResourceManager.ResourceManager(MemType.TT, "tt", Managers.rangeBackend(64), true)
    const win = place(MemType.TT, { fpfn: 16, lpfn: 32 })
    const r = man.alloc(req(4, 4), win)
    if (!("segments" in r)) return assert.fail("alloc")
    assert.isTrue(r.start >= 16 && r.start + 4 <= 32 && r.start % 4 === 0)
    assert.isTrue(man.compatible(r, win))
    assert.isFalse(man.compatible(r, place(MemType.TT, { fpfn: 0, lpfn: 8 })))
    assert.isTrue(man.intersects(r, place(MemType.TT, { fpfn: r.start, lpfn: r.start + 1 })))
    assert.isFalse(man.intersects(r, place(MemType.TT, { fpfn: 40, lpfn: 0 })))
    const top = man.alloc(req(2), place(MemType.TT, { flags: PlaceFlags.TOPDOWN }))
    if ("segments" in top) assert.strictEqual(top.start, 62)
    assert.isFalse("segments" in man.alloc(req(17), win))
  })

  it("buddy manager: CONTIGUOUS rounds up then trims; non-contiguous may be fragmented", () => {
    const man = new ResourceManager.ResourceManager(MemType.VRAM, "vram", Managers.buddyBackend(64), false)
    const r = man.alloc(req(3), place(MemType.VRAM, { flags: PlaceFlags.CONTIGUOUS }))
    if (!("segments" in r)) return assert.fail("alloc")
    assert.isTrue(r.contiguous)
    assert.strictEqual(r.numPages, 3)
    assert.isTrue(man.compatible(r, place(MemType.VRAM, { flags: PlaceFlags.CONTIGUOUS })))
    assert.isFalse(man.compatible(r, place(MemType.VRAM, { flags: PlaceFlags.TEMPORARY })) && false)
  })

  it("a TEMPORARY resource is never compatible", () => {
    const man = new ResourceManager.ResourceManager(MemType.TT, "tt", Managers.rangeBackend(64), true)
    const r = man.alloc(req(1), place(MemType.TT, { flags: PlaceFlags.TEMPORARY }))
    if (!("segments" in r)) return assert.fail("alloc")
    assert.isTrue(r.temporary)
    assert.isFalse(man.compatible(r, place(MemType.TT)))
    assert.isTrue(Placement.inPass(place(MemType.TT), false) && Placement.inPass(place(MemType.TT), true))
  })
})
