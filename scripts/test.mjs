#!/usr/bin/env node
// Runs every vitest project once, then prints the plain closing line "N passed, N failed, N skipped"
// (from vitest's JSON report) so any CI log reader can count the tests. Exits with vitest's code.
import { spawnSync } from "node:child_process"
import { existsSync, readFileSync, rmSync } from "node:fs"

const out = ".vitest-results.json"
rmSync(out, { force: true })
const args = [
  "vitest",
  "run",
  "--reporter=default",
  "--reporter=json",
  `--outputFile.json=${out}`,
  ...process.argv.slice(2)
]
const run = spawnSync("npx", args, {
  stdio: "inherit",
  env: { ...process.env, EGL_PLATFORM: process.env.EGL_PLATFORM ?? "surfaceless" }
})
if (existsSync(out)) {
  const r = JSON.parse(readFileSync(out, "utf8"))
  const skipped = (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0)
  console.log(`\ntests: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${skipped} skipped`)
}
process.exit(run.status ?? 1)
