/** WGSL for the migration kernels (u32 granularity; buffers bound in windows ≤ the binding limit). */

/** Workgroup size of the migration kernels. */
export const WG = 64

/** In-buffer copy of `count` words from `src` to `dst` (same binding; caller orders overlapping blocks). */
export const copyWithinSource = `
@group(0) @binding(0) var<storage, read_write> buf: array<u32>;
struct P { src: u32, dst: u32, count: u32, stride: u32 }
@group(0) @binding(1) var<uniform> p: P;
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3u) {
  for (var i = gid.x; i < p.count; i += p.stride) { buf[p.dst + i] = buf[p.src + i]; }
}
`

/**
 * Page list copy: one workgroup of \`wg\` invocations per (src page, dst page) pair of \`list\`
 * starting at \`p.first\`, 16 bytes (one vec4) per load/store.
 * - \`blocked\` (CPU rasterisers): 64 invocations, invocation \`li\` copies the 4 consecutive vec4
 *   at \`4·li\` — ~1.4x faster on llvmpipe than 256 invocations of one vec4 each, and as fast as a
 *   compute copy of contiguous memory there.
 * - strided (GPUs): invocation \`li\` copies vec4 \`li, li+wg, …\` (coalesced).
 */
export const copyPagesSource = (wg: number, blocked: boolean): string => `
@group(0) @binding(0) var<storage, read> src: array<vec4u>;
@group(0) @binding(1) var<storage, read_write> dst: array<vec4u>;
@group(0) @binding(2) var<storage, read> list: array<u32>;
struct P { first: u32, n: u32, pad0: u32, pad1: u32 }
@group(0) @binding(3) var<uniform> p: P;
@compute @workgroup_size(${wg})
fn main(@builtin(workgroup_id) g: vec3u, @builtin(local_invocation_index) li: u32) {
  let k = g.x + g.y * 65535u;
  if (k >= p.n) { return; }
  let s = list[2u * (p.first + k)] * 256u;
  let d = list[2u * (p.first + k) + 1u] * 256u;
  ${
    blocked
      ? `let j0 = li * ${256 / wg}u;
  for (var j = j0; j < j0 + ${256 / wg}u; j++) { dst[d + j] = src[s + j]; }`
      : `for (var j = li; j < 256u; j += ${wg}u) { dst[d + j] = src[s + j]; }`
  }
}
`

/** Fill `count` words from `first` with `value`. */
export const fillSource = `
@group(0) @binding(0) var<storage, read_write> buf: array<u32>;
struct P { first: u32, count: u32, value: u32, stride: u32 }
@group(0) @binding(1) var<uniform> p: P;
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3u) {
  for (var i = gid.x; i < p.count; i += p.stride) { buf[p.first + i] = p.value; }
}
`

/**
 * Checksum: sum and xor of mix(word, index) over the range, order independent (atomics). The CPU
 * twin is \`Migrate.checksumCpu\`.
 */
export const checksumSource = `
@group(0) @binding(0) var<storage, read> buf: array<u32>;
@group(0) @binding(1) var<storage, read_write> acc: array<atomic<u32>, 2>;
struct P { first: u32, count: u32, index0: u32, stride: u32 }
@group(0) @binding(2) var<uniform> p: P;
fn mix(w: u32, i: u32) -> u32 {
  var h = w ^ (i * 0x9e3779b9u);
  h ^= h >> 16u; h *= 0x7feb352du; h ^= h >> 15u; h *= 0x846ca68bu; h ^= h >> 16u;
  return h;
}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3u) {
  var s = 0u;
  var x = 0u;
  for (var i = gid.x; i < p.count; i += p.stride) {
    let h = mix(buf[p.first + i], p.index0 + i);
    s += h;
    x ^= h;
  }
  if (s != 0u) { atomicAdd(&acc[0], s); }
  if (x != 0u) { atomicXor(&acc[1], x); }
}
`
