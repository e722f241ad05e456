#!/usr/bin/env node
// `npm run demo`: runs the example scenarios in layer order (locking, then TTM eviction and
// migration of real GPU buffers, then VM_BIND with GPU page-table walks). `npm run demo -- gpuva`
// runs only the examples whose name contains the filter.
import { spawnSync } from "node:child_process"
import { existsSync } from "node:fs"

const demos = [
  ["resv-demo", "reservation locking: drm_exec transactions, wait-die and wound-wait"],
  ["ttm-demo", "TTM: validate, eviction, multihop moves and swapout on real GPU buffers"],
  ["gpuva-demo", "GPU VA manager + VM_BIND: binds, remaps, unbinds, GPU translation check"],
  ["xe-lite", "an xe-shaped driver prototype: TTM BOs bound with VM_BIND, evicted, revalidated and rebound"]
]
const only = process.argv[2]
let failed = 0
for (const [name, what] of demos) {
  if (only && !name.includes(only)) continue
  const main = `examples/${name}/dist/main.js`
  if (!existsSync(main)) {
    console.error(`${main} is missing: run \`npm run build\` first`)
    process.exit(1)
  }
  console.log(`\n${"=".repeat(100)}\n${name}: ${what}\n${"=".repeat(100)}`)
  const r = spawnSync(process.execPath, [main], {
    stdio: "inherit",
    env: { ...process.env, EGL_PLATFORM: process.env.EGL_PLATFORM ?? "surfaceless" }
  })
  if (r.status !== 0) failed++
}
process.exit(failed === 0 ? 0 : 1)
