import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Driver from "../src/Driver.ts"
import { type Result, run, type StepReport } from "../src/scenario.ts"

const PAGE = 4096
/** Pages mapped by the scenario's binds after the munmap hole (2 MiB − 64 KiB + 4 × 1 MiB + 64 KiB + ...). */
const MAPPED = (2 * Driver.MiB - 64 * 1024 + 4 * Driver.MiB + 64 * 1024 + Driver.MiB) / PAGE

const stepOf = (r: Result, prefix: string): StepReport => {
  const s = r.steps.find((x) => x.title.trimStart().startsWith(prefix))
  assert.isDefined(s, `step ${prefix}`)
  return s as StepReport
}
const placed = (s: StepReport, name: string) => {
  const p = s.placements.find((x) => x.name === name)
  assert.isDefined(p, name)
  return p as NonNullable<typeof p>
}
const BOUND = ["vm-a", "ext-x", "vm-b", "ext-y", "vm-c"]

describe("xe-lite: ttm-placement BOs as gpuva GEM objects", () => {
  it.effect(
    "bind, evict under pressure (evict list + zap), exec (validate back + rebind): translations and contents hold after every step, nothing leaks",
    () =>
      Effect.gen(function* () {
        const r = yield* run()
        assert.strictEqual(r.steps.length, 7)
        for (const s of r.steps) {
          assert.deepStrictEqual(s.translations.mismatches, [], s.title)
          assert.deepStrictEqual(s.damaged, [], s.title)
          assert.deepStrictEqual(s.violations, [], s.title)
        }
        // 2. everything bound lives in VRAM and every page translates there
        const bound = stepOf(r, "munmap-style")
        assert.strictEqual(bound.translations.vram, MAPPED)
        assert.strictEqual(bound.translations.zapped, 0)

        // 3. pressure evicted some bound BOs — per-VM and external ones — and zapped exactly their VAs
        const pressure = stepOf(r, "3.")
        assert.isAbove(pressure.evictions, 0)
        assert.isNotEmpty(r.externalEvicted, "an extobj was evicted")
        assert.isAbove(r.evictedByPressure.length, r.externalEvicted.length, "a per-VM BO was evicted")
        for (const name of BOUND) {
          const p = placed(pressure, name)
          const evicted = r.evictedByPressure.includes(name)
          assert.strictEqual(p.evicted, evicted, name)
          assert.match(p.where, evicted ? /^TT@/ : /^VRAM@/, name)
        }
        assert.isAbove(pressure.translations.zapped, 0)
        assert.isAbove(pressure.translations.vram, 0, "mappings of BOs that stayed are still valid")
        assert.strictEqual(pressure.translations.zapped + pressure.translations.vram, MAPPED)
        assert.strictEqual(r.gpuvaMismatchesWhileEvicted, 0, "gpuva's Verify: invalidated VAs fault")
        assert.isAbove(r.gpuvaNotReboundWhileEvicted, 0, "control: the old PTEs really are gone")

        // 4. exec: everything back in VRAM and rebound, the client's BOs evicted to TT instead
        const exec = stepOf(r, "4.")
        assert.strictEqual(exec.translations.vram, MAPPED)
        assert.strictEqual(exec.translations.zapped, 0)
        for (const name of BOUND) assert.match(placed(exec, name).where, /^VRAM@/, name)
        for (const name of ["client0", "client1"]) assert.match(placed(exec, name).where, /^TT@/, name)
        assert.strictEqual(r.gpuvaMismatchesAfterExec, 0)
        assert.deepStrictEqual(r.execDamaged, [])

        // 5. evict-all zaps every mapping; the second exec brings all of it back
        const all = stepOf(r, "5.")
        assert.strictEqual(all.translations.zapped, MAPPED)
        for (const name of BOUND) assert.isTrue(placed(all, name).evicted, name)
        const again = stepOf(r, "exec again")
        assert.strictEqual(again.translations.vram, MAPPED)

        // counters: every eviction of a bound BO put one vm_bo on the list and was validated back once
        const s = r.stats
        const evictedVmBos = r.evictedByPressure.length + BOUND.length
        assert.strictEqual(s.boundEvictions, evictedVmBos)
        assert.strictEqual(s.vmBosEvicted, evictedVmBos)
        assert.strictEqual(s.vmBoValidates, evictedVmBos)
        assert.strictEqual(s.rebindVas, s.zappedVas)
        assert.strictEqual(s.rebindJobs, 2)
        assert.strictEqual(s.execs, 2)

        // 6. teardown
        assert.deepStrictEqual(r.teardown.leftovers, [])
        assert.strictEqual(r.teardown.tablesInUse, 1)
        assert.strictEqual(r.teardown.lockedResvs, 0)
        assert.deepStrictEqual(r.teardown.leaks, { systemBuffers: 0, ghosts: 0, bos: 0 })
        assert.deepStrictEqual(r.teardown.violations, [])
      })
  )

  it.effect("control: a driver without move_notify leaves stale PTEs, and the GPU translation check catches them", () =>
    Effect.gen(function* () {
      const r = yield* run({ config: { ...Driver.defaultConfig, moveNotify: false } })
      const pressure = stepOf(r, "3.")
      assert.isAbove(pressure.evictions, 0)
      assert.isNotEmpty(pressure.translations.mismatches)
      assert.strictEqual(pressure.translations.zapped, 0)
      assert.deepStrictEqual(r.evictedByPressure, [])
      assert.isAbove(r.gpuvaMismatchesWhileEvicted, 0, "gpuva's Verify catches the stale PTEs too")
      assert.deepStrictEqual(pressure.damaged, [], "TTM itself still loses nothing")
    })
  )
})
