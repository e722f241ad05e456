/**
 * Shared vitest settings for every drmkit package.
 *
 * Importing this module installs the Node 20 polyfills that vitest 5's main process needs
 * (`Map.groupBy`, `Object.groupBy`, `Promise.withResolvers`): without them a failing test crashes
 * the reporter and the failure is never printed. It must run in the main process, so it is
 * imported from the vitest config files, not from a setup file.
 */
import { defineProject } from "vitest/config"

const groupBy = <T, K>(items: Iterable<T>, key: (item: T, index: number) => K): Map<K, Array<T>> => {
  const out = new Map<K, Array<T>>()
  let i = 0
  for (const item of items) {
    const k = key(item, i++)
    const bucket = out.get(k)
    if (bucket) bucket.push(item)
    else out.set(k, [item])
  }
  return out
}
const MapCtor = Map as unknown as { groupBy?: typeof groupBy }
MapCtor.groupBy ??= groupBy
const ObjectCtor = Object as unknown as {
  groupBy?: (items: Iterable<unknown>, key: (item: unknown, i: number) => PropertyKey) => object
}
ObjectCtor.groupBy ??= (items, key) => Object.assign(Object.create(null), Object.fromEntries(groupBy(items, key)))
const PromiseCtor = Promise as unknown as { withResolvers?: () => unknown }
PromiseCtor.withResolvers ??= () => {
  let resolve: (v: unknown) => void = () => {}
  let reject: (e: unknown) => void = () => {}
  const promise = new Promise((res, rej) => {
    resolve = res
    reject = rej
  })
  return { promise, resolve, reject }
}

/** The per-package project config: sources resolved through the `@drmkit/source` condition. */
export const drmkitProject = (name: string, options: { readonly testTimeout?: number } = {}) =>
  defineProject({
    ssr: { resolve: { conditions: ["@drmkit/source"] } },
    resolve: { conditions: ["@drmkit/source"] },
    test: {
      name,
      include: ["test/**/*.test.ts"],
      passWithNoTests: true,
      testTimeout: options.testTimeout ?? 30_000,
      hookTimeout: 60_000,
      env: { EGL_PLATFORM: "surfaceless" }
    }
  })
