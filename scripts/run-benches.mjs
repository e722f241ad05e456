#!/usr/bin/env node
// Runs every bench of the current package (bench/*.bench.ts), each in its own Node process so a
// noisy bench cannot skew the next. Sources are loaded directly (tsx + the @drmkit/source export
// condition), so no build is needed. `npm run bench -- <filter>` runs the benches whose file name
// contains <filter>. Each bench prints its table and writes bench/results/<name>.json.
import { execFileSync } from "node:child_process"
import { existsSync, readdirSync } from "node:fs"
import { join } from "node:path"

const dir = join(process.cwd(), "bench")
const only = process.argv[2]
const files = existsSync(dir)
  ? readdirSync(dir)
      .filter((f) => f.endsWith(".bench.ts"))
      .sort()
  : []
if (files.length === 0) console.log("no benches in this package")
for (const f of files) {
  if (only && !f.includes(only)) continue
  console.log(`\n### ${f}`)
  execFileSync(process.execPath, ["--conditions=@drmkit/source", "--import", "tsx", "--expose-gc", join(dir, f)], {
    stdio: "inherit",
    env: { ...process.env, EGL_PLATFORM: process.env.EGL_PLATFORM ?? "surfaceless" }
  })
}
