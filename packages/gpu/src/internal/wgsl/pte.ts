/**
 * The PTE format in WGSL, generated from the constants of `Pte.ts` (the single definition shared by
 * the CPU reference, the planner and every kernel). A PTE is a `vec2u` (lo, hi).
 */
import { FLAG_MASK, FRAME_SHIFT, HI_FRAME_MASK, LEVEL_BITS, LO_FRAME_BITS, PteBits } from "../../Pte.ts"

export const pteWgsl = `
const PTE_PRESENT: u32 = ${PteBits.PRESENT}u;
const PTE_LEAF: u32 = ${PteBits.LEAF}u;
const PTE_FLAG_MASK: u32 = ${FLAG_MASK}u;
const PTE_FRAME_SHIFT: u32 = ${FRAME_SHIFT}u;
const PTE_HI_FRAME_MASK: u32 = ${HI_FRAME_MASK}u;
// entry of frame (fhi·2^32 + flo) with flags: lo = frame[19:0] << 12 | flags, hi = frame[39:20]
fn pte_encode(flo: u32, fhi: u32, flags: u32) -> vec2u {
  return vec2u((flo << PTE_FRAME_SHIFT) | (flags & PTE_FLAG_MASK), (flo >> ${LO_FRAME_BITS}u) | (fhi << ${32 - LO_FRAME_BITS}u));
}
fn pte_present(e: vec2u) -> bool { return (e.x & PTE_PRESENT) != 0u; }
fn pte_leaf(e: vec2u) -> bool { return (e.x & PTE_LEAF) != 0u; }
// low 32 bits of the frame (a directory entry's child table index)
fn pte_frame32(e: vec2u) -> u32 { return (e.x >> PTE_FRAME_SHIFT) | ((e.y & PTE_HI_FRAME_MASK) << ${LO_FRAME_BITS}u); }
// address shift of one entry at \`level\` (12, 21, 30, 39, 48)
fn pte_level_shift(level: u32) -> u32 { return PTE_FRAME_SHIFT + ${LEVEL_BITS}u * level; }
// physical address of VA \`v\` through leaf \`e\` at a level with address shift \`shift\`
fn pte_address(e: vec2u, v: vec2u, shift: u32) -> vec2u {
  let mask = select((1u << (shift & 31u)) - 1u, 0xffffffffu, shift >= 32u);
  return vec2u((e.x & ~PTE_FLAG_MASK & ~mask) | (v.x & mask), e.y & PTE_HI_FRAME_MASK);
}
`
