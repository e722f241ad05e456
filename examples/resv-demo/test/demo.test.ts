import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { runDemo } from "../src/scenario.ts"

describe("resv demo", () => {
  it.effect("every transaction commits, backoffs happen under injection, every buffer ends unlocked", () =>
    Effect.gen(function* () {
      const r = yield* runDemo({ fibers: 4, buffers: 8, perTxn: 3, txnsPerFiber: 40, seed: 7 })
      assert.strictEqual(
        r.exec.reduce((a, f) => a + f.transactions, 0),
        160
      )
      assert.isAbove(r.backoffs.length, 0, "injection must force backoffs")
      assert.strictEqual(
        r.backoffs.length,
        r.exec.reduce((a, f) => a + f.backoffs, 0)
      )
      for (const w of r.ww) assert.strictEqual(w.transactions, 160)
      assert.deepStrictEqual(r.busyBuffers, [])
    })
  )
})
