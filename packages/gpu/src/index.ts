/**
 * @drmkit/gpu — a headless Dawn (WebGPU) device, page-table arenas walked and written by WGSL
 * compute kernels, a CPU shadow/planner and CPU reference, migration kernels and GPU jobs that
 * complete as `dma_fence`s.
 *
 * @since 0.1.0
 */
export * as CpuPageTables from "./CpuPageTables.ts"
export * as Descriptor from "./Descriptor.ts"
export * as GpuBuffer from "./GpuBuffer.ts"
export * as GpuDevice from "./GpuDevice.ts"
export * from "./GpuErrors.ts"
export * as GpuPageTables from "./GpuPageTables.ts"
export * as Migrate from "./Migrate.ts"
export * as PageTable from "./PageTable.ts"
export * as Pte from "./Pte.ts"
