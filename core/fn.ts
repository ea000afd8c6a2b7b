/**
 * The type of the functions every transformation takes (`grad`, `vmap`, `jit`, ...): any
 * arguments, any result — pytrees of tensors and JS values. A leaf of its own, so that the
 * transformations can name it without importing one another.
 */
export type Fn = (...args: any[]) => any;
