/**
 * A slot that a caller running the same call again (a jit step) passes to a kernel family: the
 * family may keep there what it derives from shapes and params (its WGSL, grid, parameter
 * block, read plan), and skip deriving it next time. Only the storages may differ between calls
 * that share a memo.
 */
export interface KernelMemo {
  /** What the kernel family derived on the first call, in its own form. */
  prepared?: unknown;
}
