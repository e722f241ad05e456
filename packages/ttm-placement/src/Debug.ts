/**
 * Debug views of a device — what TTM's debugfs and `ttm_resource_manager_debug` give a kernel
 * developer: an invariant check (usage = sum of live resources, every resource on exactly one list,
 * pinned/swapped on the unevictable list, populated-page count) and content checksums of every BO
 * computed on the GPU in one job. Unlocked snapshots: call them when no operation is in flight.
 *
 * @since 0.1.0
 */
import { Effect } from "effect"
import type { Bo } from "./BufferObject.ts"
import type { Device } from "./Device.ts"
import { checksumCpu, checksumMany } from "./internal/checksum.ts"
import { collect } from "./internal/list.ts"
import { fencesUpTo } from "./internal/resv.ts"
import { PAGE_SIZE } from "./Placement.ts"
import { Resource } from "./Resource.ts"

const listed = (dev: Device): Array<Resource> => [
  ...dev.managers.flatMap((m) => m?.lru.all() ?? []),
  ...collect(dev.unevictable, (n) => (n instanceof Resource ? n : undefined))
]

const checkBo = (bo: Bo, out: Array<string>): void => {
  const res = bo.resource
  if (res === undefined) return
  if (res.freed) out.push(`${bo.name}: resource was freed`)
  const shouldBe = bo.pinCount > 0 || bo.swapped ? "unevictable" : "lru"
  if (res.where !== shouldBe) out.push(`${bo.name}: resource on ${res.where}, expected ${shouldBe}`)
  if (res.owner !== bo) out.push(`${bo.name}: resource owned by another BO`)
  if (res.numPages !== bo.numPages) out.push(`${bo.name}: resource has ${res.numPages} pages`)
}

const checkUsage = (dev: Device, out: Array<string>): void => {
  const live = [...[...dev.bos].flatMap((b) => (b.resource ? [b.resource] : [])), ...dev.ghosts]
  for (const man of dev.managers) {
    if (man === undefined) continue
    const sum = live.filter((r) => r.memType === man.memType).reduce((n, r) => n + r.numPages * PAGE_SIZE, 0)
    if (sum !== man.usage) out.push(`${man.name}: usage ${man.usage} != sum of resources ${sum}`)
  }
  const pages = [...dev.bos].reduce((n, b) => n + (b.tt?.populated ? b.numPages : 0), 0)
  if (pages !== dev.ttPages) out.push(`ttPages ${dev.ttPages} != populated pages ${pages}`)
}

/**
 * Every invariant violation found (empty when consistent).
 *
 * @since 0.1.0
 * @category debug
 */
export const violations = (dev: Device): Array<string> => {
  const out: Array<string> = []
  const seen = new Set<Resource>()
  for (const r of listed(dev)) {
    if (seen.has(r)) out.push(`resource of bo#${r.owner.id} listed twice`)
    seen.add(r)
    if (r.owner instanceof Object && !dev.bos.has(r.owner as Bo)) out.push(`listed resource of dead bo#${r.owner.id}`)
  }
  const owners = new Set<Resource>()
  for (const bo of dev.bos) {
    if (bo.resource !== undefined) {
      if (owners.has(bo.resource)) out.push(`${bo.name}: shares a resource`)
      owners.add(bo.resource)
    }
    checkBo(bo, out)
  }
  for (const g of dev.ghosts) if (owners.has(g)) out.push(`ghost resource still attached to bo#${g.owner.id}`)
  checkUsage(dev, out)
  return out
}

/**
 * Checksums (see `Access.checksumOf`) of the given BOs' contents: GPU-resident ones computed in
 * one GPU job after their KERNEL/WRITE fences, swapped ones from host memory, unbacked ones as
 * zeros.
 *
 * @since 0.1.0
 * @category debug
 */
export const checksums = (dev: Device, bos: ReadonlyArray<Bo>): Effect.Effect<Array<number>> =>
  Effect.gen(function* () {
    const gpuBos = bos.filter((b) => b.resource !== undefined && !b.swapped)
    const deps = gpuBos.flatMap((b) => fencesUpTo(b.resv, "write"))
    const items = gpuBos.map((b) => dev.storage.extents(b.resource as Resource))
    const sums = yield* Effect.promise(() => checksumMany(dev.storage.gpu, deps, items))
    const byBo = new Map(gpuBos.map((b, i) => [b, sums[i] ?? 0]))
    return bos.map((b) => {
      const host = b.tt?.swapped
      if (host !== undefined) return checksumCpu(new Uint32Array(host.buffer, host.byteOffset, host.byteLength / 4))
      return byBo.get(b) ?? checksumCpu(new Uint32Array(b.size / 4))
    })
  })

/**
 * Live per-resource GPU buffers and ghosts (leak checks after teardown).
 *
 * @since 0.1.0
 * @category debug
 */
export const leaks = (
  dev: Device
): { readonly systemBuffers: number; readonly ghosts: number; readonly bos: number } => ({
  systemBuffers: dev.storage.liveSystemBuffers,
  ghosts: dev.ghosts.size,
  bos: dev.bos.size
})
