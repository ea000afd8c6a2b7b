import * as mg from "../mod.ts";
await mg.init();
for (const K of [30000, 34000, 70000]) {
  const x = mg.random.normal(mg.random.key(1), [K, 16]),
    y = mg.random.normal(mg.random.key(2), [K, 2]),
    c = mg.random.normal(mg.random.key(3), [16, 2]);
  for (
    const [name, f] of [
      [
        "tA+add",
        (x: mg.Tensor, y: mg.Tensor, c: mg.Tensor) => mg.add(mg.matmul(mg.transpose(x), y), c),
      ],
      [
        "tA+mul",
        (x: mg.Tensor, y: mg.Tensor, c: mg.Tensor) => mg.mul(mg.matmul(mg.transpose(x), y), c),
      ],
      [
        "plain+add",
        (x: mg.Tensor, y: mg.Tensor, c: mg.Tensor) =>
          mg.add(mg.matmul(mg.reshape(mg.transpose(x), [16, K]), y), c),
      ],
    ] as const
  ) {
    const a = await f(x, y, c).toFloat64(), b = await mg.jit(f)(x, y, c).toFloat64();
    let w = 0;
    for (let i = 0; i < a.length; i++) w = Math.max(w, Math.abs(a[i] - b[i]));
    console.log(K, name, "maxdiff", w.toExponential(2));
  }
}
