// Prepended to every shader file: the launch convention shared by all kernels.
//
// Every entry point runs 64 invocations per workgroup over a flat range of
// work items. A grid dimension holds at most 65535 workgroups, so the host
// spreads large launches over x and y; `flat_index` undoes that.

const WORKGROUP_SIZE: u32 = 64u;

// The flat work-item index of this invocation.
fn flat_index(id: vec3<u32>, groups: vec3<u32>) -> u32 {
    return id.x + id.y * groups.x * WORKGROUP_SIZE;
}
