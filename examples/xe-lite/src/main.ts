/**
 * `node examples/xe-lite/dist/main.js`: xe-lite, an xe-shaped driver prototype on the drmkit SDK.
 * TTM BOs (VRAM + TT on a real GPU device) are the GEM objects of a gpuva VM whose page tables
 * live on the same device. Binds, memory pressure that evicts bound BOs (their vm_bos go on the
 * evict list, their PTEs are zapped), then exec: lock VM + extobjs, validate back through TTM,
 * rebind — with every mapped page translated by the GPU walker and every BO checksummed on the
 * GPU after each step.
 */
import { Effect } from "effect"
import { run } from "./scenario.ts"

const main = Effect.gen(function* () {
  const t0 = performance.now()
  const r = yield* run({ log: (line) => console.log(line) })
  const bad =
    r.steps.some((s) => s.translations.mismatches.length > 0 || s.damaged.length > 0 || s.violations.length > 0) ||
    r.execDamaged.length > 0 ||
    r.teardown.leftovers.length > 0 ||
    r.teardown.leaks.bos + r.teardown.leaks.ghosts + r.teardown.leaks.systemBuffers > 0
  console.log(
    `\ndone in ${(performance.now() - t0).toFixed(0)} ms: ${bad ? "FAILED (see above)" : "nothing lost, nothing leaked"}`
  )
  if (bad) process.exitCode = 1
})

Effect.runPromise(main).catch((e: unknown) => {
  console.error(e)
  process.exit(1)
})
