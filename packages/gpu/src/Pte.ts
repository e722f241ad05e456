/**
 * The page-table entry format, defined once for the CPU reference, the planner and the WGSL
 * kernels (the WGSL helpers in `internal/wgsl/pte.ts` are generated from these constants).
 *
 * A PTE is 64 bits stored as two little-endian u32 words (WGSL has no u64):
 *
 * ```
 *  lo: 31 ............ 12 | 11 .... 3 | 2    | 1        | 0
 *      frame[19:0]        | user bits | LEAF | WRITABLE | PRESENT
 *  hi: 31 ..... 20 | 19 ......... 0
 *      reserved(0) | frame[39:20]
 * ```
 *
 * Leaves (level-0 PTEs and huge PDE-as-PTEs at levels 1/2) carry {@link PteBits.LEAF}; directory
 * entries have it clear and their frame is the arena index of the child table. This mirrors the
 * x86/xe encoding (`XE_PAGE_PRESENT`, `XE_PAGE_RW`, `XE_PDE_PS_2M`/`XE_PDPE_PS_1G`).
 *
 * @since 0.1.0
 */

/**
 * Bit assignments of the low PTE word. `DEVICE` marks device-local (VRAM) frames (xe's
 * `XE_PPGTT_PTE_DM`), `NULL` a sparse/null mapping that reads zero (xe's `XE_PTE_NULL`), `CACHE0/1`
 * a two-bit cache mode (PAT index); bits 7..11 are free for drivers.
 *
 * @since 0.1.0
 * @category pte
 */
export const PteBits = {
  PRESENT: 0x1,
  WRITABLE: 0x2,
  LEAF: 0x4,
  DEVICE: 0x8,
  NULL: 0x10,
  CACHE0: 0x20,
  CACHE1: 0x40
} as const

/**
 * Flag bits a caller may set on a mapping (everything below bit 12 except PRESENT and LEAF,
 * which the planner owns).
 *
 * @since 0.1.0
 * @category pte
 */
export const USER_FLAG_MASK = 0xffa

/** All flag bits of the low word. @since 0.1.0 @category pte */
export const FLAG_MASK = 0xfff

/**
 * Bit position of the frame in the low word (= log2 of the 4 KiB page; x86/xe `PAGE_SHIFT`).
 *
 * @since 0.1.0
 * @category pte
 */
export const FRAME_SHIFT = 12

/** Frame bits held by the low word (frame[19:0]); the high word holds frame[39:20]. @since 0.1.0 @category pte */
export const LO_FRAME_BITS = 20

/** Mask of the frame bits in the high word (frame[39:20]; bits 31..20 reserved). @since 0.1.0 @category pte */
export const HI_FRAME_MASK = 0xfffff

/** Index bits per level (512 entries; xe's `XE_PDES` = 512). @since 0.1.0 @category pte */
export const LEVEL_BITS = 9

/** Largest frame number a PTE can hold (40 bits → 52-bit physical addresses). @since 0.1.0 @category pte */
export const MAX_FRAME = 2 ** 40 - 1

/** Entries per table (512) and u32 words per table (1024). @since 0.1.0 @category pte */
export const ENTRIES_PER_TABLE = 512
/** u32 words per table (a 4 KiB `XE_PAGE_SIZE` page table as u32 pairs). @since 0.1.0 @category pte */
export const WORDS_PER_TABLE = 1024
/** Bytes per table: 4 KiB. @since 0.1.0 @category pte */
export const TABLE_BYTES = 4096

/**
 * Address shift of one entry at each level, leaf first (xe's `xe_normal_pt_shifts`): 4 KiB, 2 MiB,
 * 1 GiB, 512 GiB, 256 TiB.
 *
 * @since 0.1.0
 * @category pte
 */
export const LEVEL_SHIFTS = [12, 21, 30, 39, 48] as const

/**
 * Highest level at which a huge leaf may be written (xe: `MAX_HUGEPTE_LEVEL` = 2, i.e. 1 GiB).
 *
 * @since 0.1.0
 * @category pte
 */
export const MAX_HUGE_LEVEL = 2

/** Number of 4 KiB pages one entry at `level` spans (512^level). @since 0.1.0 @category pte */
export const pagesPerEntry = (level: number): number => 512 ** level

const TWO32 = 2 ** 32
const LO_FRAME_LIMIT = 2 ** LO_FRAME_BITS

/**
 * The entry encoder: `lo(frame, flags)` = frame[19:0] << 12 | flags (12 bits), `hi(frame)` =
 * frame[39:20]. Built by a factory so hot loops (CPU reference, planner literals) get closures over
 * factory-local constants, which V8 inlines; a function reading module-level exports is not inlined
 * under the source loader (tsx/vitest), measured 10-15x slower in the 1 M-entry bulk write. The WGSL
 * twin `pte_encode` is generated from the same constants.
 *
 * @since 0.1.0
 * @category pte
 */
export const encoder = (): {
  readonly lo: (frame: number, flags: number) => number
  readonly hi: (frame: number) => number
} => {
  const limit = 2 ** LO_FRAME_BITS
  const shift = FRAME_SHIFT
  const mask = FLAG_MASK
  return {
    lo: (frame, flags) => (((frame % limit) << shift) | (flags & mask)) >>> 0,
    hi: (frame) => Math.floor(frame / limit) >>> 0
  }
}

const encode = encoder()

/**
 * Encodes frame + flags into the low word.
 *
 * @since 0.1.0
 * @category pte
 */
export const lo: (frame: number, flags: number) => number = encode.lo

/**
 * Encodes the high word (frame bits 20..39).
 *
 * @since 0.1.0
 * @category pte
 */
export const hi: (frame: number) => number = encode.hi

/** Frame number of an encoded PTE. @since 0.1.0 @category pte */
export const frameOf = (loWord: number, hiWord: number): number =>
  (loWord >>> FRAME_SHIFT) + (hiWord & HI_FRAME_MASK) * LO_FRAME_LIMIT

/** Flag bits of an encoded PTE. @since 0.1.0 @category pte */
export const flagsOf = (loWord: number): number => loWord & FLAG_MASK

/** Whether the entry is present (`XE_PAGE_PRESENT`). @since 0.1.0 @category pte */
export const isPresent = (loWord: number): boolean => (loWord & PteBits.PRESENT) !== 0

/**
 * A decoded entry (for debugging and tests).
 *
 * @since 0.1.0
 * @category pte
 */
export interface Decoded {
  readonly present: boolean
  readonly writable: boolean
  readonly leaf: boolean
  readonly frame: number
  readonly flags: number
}

/** Decodes an entry. @since 0.1.0 @category pte */
export const decode = (loWord: number, hiWord: number): Decoded => ({
  present: (loWord & PteBits.PRESENT) !== 0,
  writable: (loWord & PteBits.WRITABLE) !== 0,
  leaf: (loWord & PteBits.LEAF) !== 0,
  frame: frameOf(loWord, hiWord),
  flags: flagsOf(loWord)
})

/** Flags of a directory entry (PDE) pointing at a child table (xe `xelp_pde_encode_bo`). @since 0.1.0 @category pte */
export const dirFlags = PteBits.PRESENT | PteBits.WRITABLE

/** Flags of a leaf (PTE or huge PDE-as-PTE) built from user flags (xe `xelp_pte_encode_bo`). @since 0.1.0 @category pte */
export const leafFlags = (userFlags: number): number => (userFlags & USER_FLAG_MASK) | PteBits.PRESENT | PteBits.LEAF

/**
 * Marker the translate kernels write in the high word of a faulting translation; the low word then
 * holds the level at which the walk found a non-present entry.
 *
 * @since 0.1.0
 * @category pte
 */
export const FAULT = 0xffffffff

/** Splits a u64 (bigint) into `[lo, hi]` u32 words. @since 0.1.0 @category pte */
export const splitU64 = (x: bigint): readonly [number, number] => [
  Number(x & 0xffffffffn),
  Number((x >> 32n) & 0xffffffffn)
]

/** Joins `[lo, hi]` u32 words into a bigint. @since 0.1.0 @category pte */
export const joinU64 = (l: number, h: number): bigint => (BigInt(h >>> 0) << 32n) | BigInt(l >>> 0)

/** Joins `[lo, hi]` into a JS number (exact below 2^53). @since 0.1.0 @category pte */
export const joinNumber = (l: number, h: number): number => (h >>> 0) * TWO32 + (l >>> 0)
