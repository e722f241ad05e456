/**
 * WGSL for the page-table kernels, generated for an arena split into `segments` storage buffers of
 * `tablesPerSegment` tables each. The PTE bit layout comes from `Pte.ts` (single source of truth).
 */
import { FAULT } from "../../Pte.ts"
import { pteWgsl } from "./pte.ts"

/** Workgroup size of every page-table kernel. */
export const WG = 64

const arenaDecls = (segments: number, access: "read" | "read_write"): string =>
  Array.from(
    { length: segments },
    (_, s) => `@group(0) @binding(${s}) var<storage, ${access}> a${s}: array<vec2u>;`
  ).join("\n")

const loadFn = (segments: number, tps: number): string => `
fn ld(t: u32, w: u32) -> vec2u {
  let o = (t % ${tps}u) * 512u + w;
  switch (t / ${tps}u) {
${Array.from({ length: segments }, (_, s) => `    case ${s}u: { return a${s}[o]; }`).join("\n")}
    default: { return vec2u(0u, 0u); }
  }
}`

/**
 * How the invocations of one descriptor's workgroup share its entries:
 * - `strided` (real GPUs): 64 invocations, invocation `li` writes entries `li, li+64, …` — adjacent
 *   invocations store adjacent entries, so stores coalesce.
 * - `blocked` (CPU rasterisers): 16 invocations, invocation `li` writes the 32 consecutive entries
 *   from `32·li`. On llvmpipe every store is a per-lane scalar loop; blocked stores with few
 *   invocations per workgroup ran ~1.6x faster than the strided shape (measured, 1 M entries) and
 *   reach the speed of a plain fill kernel.
 */
export type ApplyLayout = "strided" | "blocked"

/** Workgroup size of the apply kernel per layout. */
export const applyWorkgroup = (layout: ApplyLayout): number => (layout === "blocked" ? 16 : 64)

/** Loop over the entries `j` this invocation writes (count = entries of the descriptor). */
const entryLoop = (layout: ApplyLayout): string => {
  if (layout === "strided") return `for (var j = li; j < count; j += ${applyWorkgroup(layout)}u)`
  const per = 512 / applyWorkgroup(layout)
  return `let j0 = li * ${per}u;
  let j1 = min(count, j0 + ${per}u);
  for (var j = j0; j < j1; j++)`
}

/** Per-segment writer: the segment is chosen once per descriptor, not per store. */
const runFn = (s: number, layout: ApplyLayout): string => `
fn run${s}(o: u32, li: u32, d: u32, count: u32, kind: u32) {
  if (kind == 0u) {
    let l0 = descs[d + 4u];
    ${entryLoop(layout)} { a${s}[o + j] = lits[l0 + j]; }
    return;
  }
  let blo = descs[d + 4u];
  let bhi = descs[d + 5u];
  let inc = descs[d + 6u];
  let flags = descs[d + 7u];
  ${entryLoop(layout)} {
    let flo = blo + j * inc;
    a${s}[o + j] = pte_encode(flo, bhi + select(0u, 1u, flo < blo), flags);
  }
}`

/**
 * Bulk apply: one workgroup per descriptor (8 u32 each, see Descriptor.ts), its invocations share
 * the entries as `layout` says. Literal values come from \`lits\`; generators compute
 * frame = base + i·inc with a 64-bit carry.
 */
export const applySource = (segments: number, tps: number, layout: ApplyLayout): string => `
${pteWgsl}
${arenaDecls(segments, "read_write")}
@group(0) @binding(${segments}) var<storage, read> descs: array<u32>;
@group(0) @binding(${segments + 1}) var<storage, read> lits: array<vec2u>;
${Array.from({ length: segments }, (_, s) => runFn(s, layout)).join("\n")}
@compute @workgroup_size(${applyWorkgroup(layout)})
fn apply(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32) {
  let d = wg.x * 8u;
  let table = descs[d];
  let o = (table % ${tps}u) * 512u + descs[d + 1u];
  let count = descs[d + 2u];
  let kind = descs[d + 3u];
  switch (table / ${tps}u) {
${Array.from({ length: segments }, (_, s) => `    case ${s}u: { run${s}(o, li, d, count, kind); }`).join("\n")}
    default: {}
  }
}
`

/**
 * Translate: one thread per VA (grid-stride); walks from the root like the MMU. Output is the PA
 * (lo, hi) or (level, FAULT).
 */
export const translateSource = (segments: number, tps: number): string => `
${pteWgsl}
${arenaDecls(segments, "read")}
@group(0) @binding(${segments}) var<storage, read> vas: array<vec2u>;
@group(0) @binding(${segments + 1}) var<storage, read_write> outp: array<vec2u>;
struct P { n: u32, root: u32, levels: u32, stride: u32 }
@group(0) @binding(${segments + 2}) var<uniform> p: P;
${loadFn(segments, tps)}
fn idx(v: vec2u, shift: u32) -> u32 {
  if (shift >= 32u) { return (v.y >> (shift - 32u)) & 511u; }
  if (shift + 9u <= 32u) { return (v.x >> shift) & 511u; }
  return ((v.x >> shift) | (v.y << (32u - shift))) & 511u;
}
@compute @workgroup_size(${WG})
fn translate(@builtin(global_invocation_id) gid: vec3u) {
  for (var i = gid.x; i < p.n; i += p.stride) {
    let v = vas[i];
    var table = p.root;
    var r = vec2u(0u, ${FAULT}u);
    for (var level = i32(p.levels) - 1; level >= 0; level--) {
      let shift = pte_level_shift(u32(level));
      let e = ld(table, idx(v, shift));
      if (!pte_present(e)) { r = vec2u(u32(level), ${FAULT}u); break; }
      if (level == 0 || pte_leaf(e)) { r = pte_address(e, v, shift); break; }
      table = pte_frame32(e);
    }
    outp[i] = r;
  }
}
`
