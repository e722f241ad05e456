#!/usr/bin/env node
// The npm registry this project's machines reach serves only the Linux builds of packages that
// ship per-platform binaries as optional dependencies (biome, turbo). `npm install` then leaves the
// other platforms out of package-lock.json, and `npm ci` refuses the lock as "out of sync"
// ("Missing: @biomejs/cli-darwin-arm64@ from lock file"). This script records those optional
// platform packages in the lock with their os/cpu/libc constraints, exactly as npm does on a machine
// that can see them, so `npm ci` skips them as platform mismatches. Run it after `npm install`.
import { readFileSync, writeFileSync } from "node:fs"

const path = new URL("../package-lock.json", import.meta.url)
const lock = JSON.parse(readFileSync(path, "utf8"))
const pkgs = lock.packages
const constraints = (name) => {
  const n = name.toLowerCase()
  const os = /darwin/.test(n)
    ? "darwin"
    : /win32|windows/.test(n)
      ? "win32"
      : /android/.test(n)
        ? "android"
        : /linux/.test(n)
          ? "linux"
          : /freebsd/.test(n)
            ? "freebsd"
            : undefined
  const cpu = /arm64|aarch64/.test(n)
    ? "arm64"
    : /x64|-64\b|x86_64/.test(n)
      ? "x64"
      : /ia32/.test(n)
        ? "ia32"
        : /arm/.test(n)
          ? "arm"
          : undefined
  const out = {}
  if (cpu) out.cpu = [cpu]
  if (/musl/.test(n)) out.libc = ["musl"]
  if (os) out.os = [os]
  return out
}
let added = 0
for (const [key, meta] of Object.entries(pkgs)) {
  const optional = meta.optionalDependencies ?? {}
  for (const [dep, version] of Object.entries(optional)) {
    const at = `node_modules/${dep}`
    if (pkgs[at] || pkgs[`${key}/${at}`]) continue
    const c = constraints(dep)
    if (!c.os) continue // not a platform package: leave it to npm
    pkgs[at] = { version, ...(meta.dev ? { dev: true } : {}), optional: true, ...c }
    added++
  }
}
lock.packages = Object.fromEntries(
  Object.entries(pkgs).sort(([a], [b]) => (a === "" ? -1 : b === "" ? 1 : a < b ? -1 : a > b ? 1 : 0))
)
writeFileSync(path, `${JSON.stringify(lock, null, 2)}\n`)
console.log(`lock-platform-stubs: recorded ${added} optional platform package(s)`)
