import { assert, layer } from "@effect/vitest"
import { Effect } from "effect"
import { CpuPageTables, GpuPageTables, PageTable } from "../src/index.ts"
import { DeviceLayer, gpu } from "./helpers.ts"

layer(DeviceLayer)("smoke", (it) => {
  it.effect("map + apply equals cpu", () =>
    Effect.gen(function* () {
      const g = yield* gpu
      console.log(g.adapter.description, g.adapter.backend)
      const shadow = new PageTable.PageTableShadow({ levels: 4, tables: 64 })
      const cpu = new CpuPageTables.CpuPageTables(64)
      const pt = yield* GpuPageTables.make(g, 64)
      const plan = PageTable.orThrow(shadow.map(0x1000n, 0x5000n, { _tag: "Contiguous", baseFrame: 77 }))
      cpu.apply(plan)
      yield* GpuPageTables.applyAndWait(pt, plan)
      const mem = yield* GpuPageTables.read(pt)
      assert.deepStrictEqual(Array.from(mem), Array.from(cpu.memory))
      const vas = new Uint32Array([0x1234, 0, 0x9000, 0, 0x5fff, 0])
      const t1 = cpu.translate(0, 4, vas)
      const t2 = yield* GpuPageTables.translate(pt, 0, 4, vas)
      console.log(Array.from(t1), Array.from(t2))
      assert.deepStrictEqual(Array.from(t2), Array.from(t1))
      assert.strictEqual(t1[0], 77 * 4096 + 0x234)
    })
  )
})
