// Prepended to every shader file: the launch convention shared by all kernels.
//
// Every entry point runs 64 invocations per workgroup over a flat range of
// work items. A grid dimension holds at most 65535 workgroups, so the host
// spreads large launches over x and y; `flat_index` undoes that.

const WORKGROUP_SIZE: u32 = 64u;

// max(v, 0) when a kernel's `relu` parameter is 1: a ReLU that follows an op
// is computed by the op's kernel as it writes (see exec/plan.rs).
fn relu_if(v: f32, relu: u32) -> f32 {
    return select(v, max(v, 0.0), relu == 1u);
}

// The flat work-item index of this invocation.
fn flat_index(id: vec3<u32>, groups: vec3<u32>) -> u32 {
    return id.x + id.y * groups.x * WORKGROUP_SIZE;
}

// The four elements an element-wise invocation handles: its flat index and
// the three a whole dispatch further on, so neighbouring lanes still touch
// neighbouring values. With one element each, a software driver (SwiftShader,
// llvmpipe) spends more on each invocation's bookkeeping than on its work.
fn element_quad(id: vec3<u32>, groups: vec3<u32>) -> vec4<u32> {
    let dispatched = groups.x * groups.y * WORKGROUP_SIZE;
    return vec4<u32>(flat_index(id, groups)) + vec4<u32>(0u, 1u, 2u, 3u) * dispatched;
}

// Workgroup-tiled matrix products, C = A·B (the `_tiled` kernels, for hardware
// GPUs). A workgroup computes a BLOCK×BLOCK tile of C: per step of the depth
// it stages A's BLOCK×DEPTH_STEP and B's DEPTH_STEP×BLOCK values in workgroup
// memory, each loaded once from memory and then read by 8 invocations; each
// invocation accumulates a 4×4 sub-tile in registers.
const BLOCK: u32 = 32u;
const DEPTH_STEP: u32 = 16u;
// Element (k, i) of a staged tile is at k·BLOCK + i.
var<workgroup> a_tile: array<f32, 512>;
var<workgroup> b_tile: array<f32, 512>;

// The first row and column of this invocation's 4×4 sub-tile within the block.
fn sub_tile_origin(lane: u32) -> vec2<u32> {
    return vec2<u32>((lane / 8u) * 4u, (lane % 8u) * 4u);
}

// acc[r][s] += Σ_k A[origin.x + r, k] · B[k, origin.y + s] over the staged tiles.
fn multiply_staged_tiles(acc: ptr<function, array<vec4<f32>, 4>>, origin: vec2<u32>) {
    for (var k = 0u; k < DEPTH_STEP; k++) {
        let a_at = k * BLOCK + origin.x;
        let b_at = k * BLOCK + origin.y;
        let b4 = vec4<f32>(b_tile[b_at], b_tile[b_at + 1u], b_tile[b_at + 2u], b_tile[b_at + 3u]);
        (*acc)[0] += a_tile[a_at] * b4;
        (*acc)[1] += a_tile[a_at + 1u] * b4;
        (*acc)[2] += a_tile[a_at + 2u] * b4;
        (*acc)[3] += a_tile[a_at + 3u] * b4;
    }
}
