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
      description: ai.description || ai.device || ai.vendor || "unknown adapter",
      vendor: ai.vendor,
      architecture: ai.architecture,
      isFallbackAdapter,
      backendHint,
      glPath,
      maxRegisterBlock: glPath ? 256 : Infinity,
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
