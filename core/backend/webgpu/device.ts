/**
 * Acquiring the WebGPU adapter and device, with the adapter's real limits (a device made
 * without `requiredLimits` gets WebGPU's small defaults: 8 storage buffers, 256 invocations).
 */

/** What the user can learn about the adapter in use. */
export interface AdapterInfo {
  /** Human-readable adapter name, e.g. "llvmpipe (LLVM 15.0.6, 256 bits)". */
  description: string;
  /** Vendor as reported by the driver. */
  vendor: string;
  /** Architecture as reported by the driver (often empty). */
  architecture: string;
  /** True for software adapters such as Mesa llvmpipe. */
  isFallbackAdapter: boolean;
  /** "vulkan", "gl", ... as chosen by DENO_WEBGPU_BACKEND (empty when unset). */
  backendHint: string;
  /**
   * Whether this is Mesa's llvmpipe reached through wgpu's GL path — what Deno picks on Linux
   * when the Vulkan driver is absent. From DENO_WEBGPU_BACKEND when set; otherwise told by the
   * features the GL path offers there (ETC2 textures, no shader-f16; llvmpipe over Vulkan
   * offers shader-f16 and no ETC2).
   */
  glPath: boolean;
  /**
   * Accumulators one invocation of a register-blocked kernel may keep (matmul's tm × tn). On
   * llvmpipe's GL path a block of more than 320 compiles and validates, yet the first
   * (tm·tn − 320) accumulators come back as zeros (16×32: 192 of every 512 outputs; measured
   * with Mesa 22.3.6), so there it is 256 (16×16 blocks); elsewhere unbounded.
   */
  maxRegisterBlock: number;
  /**
   * Loop iterations one invocation may run in all (every loop's back-edges counted together),
   * measured when the device is acquired. Mesa's llvmpipe (Vulkan and GL paths alike; 22.3.6)
   * stops every loop of an invocation once 65,535 iterations have run — no error, the loops
   * just exit, so a longer loop returns a partial sum and later loops in the same invocation
   * run once or not at all. Kernels whose loops could run longer split their work into
   * dispatches that stay within it, or refuse; elsewhere it is Infinity.
   */
  maxLoopIterations: number;
  /** WebGPU features the adapter offers. */
  features: string[];
  /** The limits the device was created with (the adapter's maxima). */
  limits: {
    maxStorageBufferBindingSize: number;
    maxBufferSize: number;
    maxComputeWorkgroupsPerDimension: number;
    maxStorageBuffersPerShaderStage: number;
    maxComputeInvocationsPerWorkgroup: number;
    maxComputeWorkgroupStorageSize: number;
    minStorageBufferOffsetAlignment: number;
    minUniformBufferOffsetAlignment: number;
    maxUniformBufferBindingSize: number;
    maxUniformBuffersPerShaderStage: number;
  };
}

export const NO_ADAPTER_HELP =
  "no WebGPU adapter: on Linux install Mesa (libegl-mesa0/mesa-vulkan-drivers) or a GPU driver; " +
  'or use the reference backend with setBackend("reference")';

export interface AcquiredDevice {
  device: GPUDevice;
  info: AdapterInfo;
}

export async function acquireDevice(): Promise<AcquiredDevice> {
  const gpu = (globalThis.navigator as { gpu?: GPU } | undefined)?.gpu;
  if (!gpu) throw new Error(`navigator.gpu is missing: ${NO_ADAPTER_HELP}`);
  const adapter = await gpu.requestAdapter({ powerPreference: "high-performance" });
  if (!adapter) throw new Error(NO_ADAPTER_HELP);
  const l = adapter.limits;
  const limits = {
    maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
    maxBufferSize: l.maxBufferSize,
    maxComputeWorkgroupsPerDimension: l.maxComputeWorkgroupsPerDimension,
    maxStorageBuffersPerShaderStage: l.maxStorageBuffersPerShaderStage,
    maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
    maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
    maxComputeWorkgroupSizeX: l.maxComputeWorkgroupSizeX,
    maxComputeWorkgroupSizeY: l.maxComputeWorkgroupSizeY,
    minStorageBufferOffsetAlignment: l.minStorageBufferOffsetAlignment,
    minUniformBufferOffsetAlignment: l.minUniformBufferOffsetAlignment,
    maxUniformBufferBindingSize: l.maxUniformBufferBindingSize,
    maxUniformBuffersPerShaderStage: l.maxUniformBuffersPerShaderStage,
  };
  const wanted: GPUFeatureName[] = [];
  if (adapter.features.has("timestamp-query")) wanted.push("timestamp-query");
  const device = await adapter.requestDevice({ requiredLimits: limits, requiredFeatures: wanted });
  const ai = adapter.info;
  const dl = device.limits; // what was granted, which is what validation uses
  const isFallbackAdapter = Boolean((ai as { isFallbackAdapter?: boolean }).isFallbackAdapter);
  const backendHint = readEnv("DENO_WEBGPU_BACKEND");
  const glPath = isFallbackAdapter && onGlPath(backendHint, adapter.features);
  return {
    device,
    info: {
      // browsers leave description empty: "google swiftshader" says more than "google"
      description: ai.description ||
        [ai.vendor, ai.architecture, ai.device].filter(Boolean).join(" ") || "unknown adapter",
      vendor: ai.vendor,
      architecture: ai.architecture,
      isFallbackAdapter,
      backendHint,
      glPath,
      maxRegisterBlock: glPath ? 256 : Infinity,
      maxLoopIterations: await measureLoopCap(device),
      features: [...adapter.features],
      limits: {
        maxStorageBufferBindingSize: dl.maxStorageBufferBindingSize,
        maxBufferSize: dl.maxBufferSize,
        maxComputeWorkgroupsPerDimension: dl.maxComputeWorkgroupsPerDimension,
        maxStorageBuffersPerShaderStage: dl.maxStorageBuffersPerShaderStage,
        maxComputeInvocationsPerWorkgroup: dl.maxComputeInvocationsPerWorkgroup,
        maxComputeWorkgroupStorageSize: dl.maxComputeWorkgroupStorageSize,
        minStorageBufferOffsetAlignment: dl.minStorageBufferOffsetAlignment,
        minUniformBufferOffsetAlignment: dl.minUniformBufferOffsetAlignment,
        maxUniformBufferBindingSize: dl.maxUniformBufferBindingSize,
        maxUniformBuffersPerShaderStage: dl.maxUniformBuffersPerShaderStage,
      },
    },
  };
}

/** Iterations the probe loop asks for: more than any loop cap we know of. */
const LOOP_PROBE = 1 << 20;

/**
 * Run one invocation of a loop of 2²⁰ iterations (its bound a uniform, so no compiler can
 * unroll or fold it) and read how many ran: the adapter's loop cap, or Infinity when all did.
 */
async function measureLoopCap(device: GPUDevice): Promise<number> {
  const code = `@group(0) @binding(0) var<storage, read_write> out: array<u32>;
@group(0) @binding(1) var<uniform> n: vec4<u32>;
@compute @workgroup_size(1) fn main() {
  var count = 0u;
  for (var i = 0u; i < n.x; i = i + 1u) { count = count + 1u; }
  out[0] = count;
}`;
  const module = device.createShaderModule({ code, label: "loop cap probe" });
  const pipeline = device.createComputePipeline({
    layout: "auto",
    compute: { module, entryPoint: "main" },
  });
  const usage = GPUBufferUsage;
  const out = device.createBuffer({ size: 16, usage: usage.STORAGE | usage.COPY_SRC });
  const bound = device.createBuffer({ size: 16, usage: usage.UNIFORM | usage.COPY_DST });
  const read = device.createBuffer({ size: 16, usage: usage.MAP_READ | usage.COPY_DST });
  try {
    device.queue.writeBuffer(bound, 0, new Uint32Array([LOOP_PROBE, 0, 0, 0]));
    const group = device.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries: [{ binding: 0, resource: { buffer: out } }, {
        binding: 1,
        resource: { buffer: bound },
      }],
    });
    const encoder = device.createCommandEncoder();
    const pass = encoder.beginComputePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, group);
    pass.dispatchWorkgroups(1);
    pass.end();
    encoder.copyBufferToBuffer(out, 0, read, 0, 16);
    device.queue.submit([encoder.finish()]);
    await read.mapAsync(GPUMapMode.READ);
    const ran = new Uint32Array(read.getMappedRange().slice(0))[0];
    read.unmap();
    return ran >= LOOP_PROBE ? Infinity : ran;
  } finally {
    out.destroy();
    bound.destroy();
    read.destroy();
  }
}

/** Whether wgpu reached the adapter through its GL backend (see `AdapterInfo.glPath`). */
function onGlPath(hint: string, features: GPUSupportedFeatures): boolean {
  const first = hint.split(",")[0].trim().toLowerCase();
  if (first) return first === "gl" || first === "gles" || first === "opengl";
  return features.has("texture-compression-etc2") && !features.has("shader-f16");
}

function readEnv(name: string): string {
  try {
    return Deno.env.get(name) ?? "";
  } catch {
    return ""; // no --allow-env: the hint is informational only
  }
}
