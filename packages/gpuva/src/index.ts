/**
 * @drmkit/gpuva — the DRM GPU VA manager (`drm_gpuvm`): VA spaces with a reserved node, the VA
 * tree, the split/merge generators (list and callback modes), prefetch / unmap-all / madvise op
 * generators and the apply helpers.
 *
 * @since 0.1.0
 */

export * as Allocator from "./Allocator.ts"
export * as BindQueue from "./BindQueue.ts"
export * as GpuVa from "./GpuVa.ts"
export * as GpuVm from "./GpuVm.ts"
export * as Ops from "./Ops.ts"
export * as PageTables from "./PageTables.ts"
export * as SplitMerge from "./SplitMerge.ts"
export * as VaSpace from "./VaSpace.ts"
export * as Verify from "./Verify.ts"
export * as VmBind from "./VmBind.ts"
export * as VmBo from "./VmBo.ts"
