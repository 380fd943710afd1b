// Adam update as in torch.optim.Adam (no weight decay, no amsgrad).

// The same for every parameter tensor of a step; the length comes from the buffer.
struct AdamParams {
    beta1: f32,
    beta2: f32,
    eps: f32,
    step_size: f32,              // lr / (1 − beta1^t)
    bias_correction2_sqrt: f32,  // sqrt(1 − beta2^t)
}

@group(0) @binding(0) var<uniform> p: AdamParams;
@group(0) @binding(1) var<storage, read> grad: array<f32>;
@group(0) @binding(2) var<storage, read_write> param: array<f32>;
@group(0) @binding(3) var<storage, read_write> m: array<f32>;
@group(0) @binding(4) var<storage, read_write> v: array<f32>;

// m ← β1·m + (1−β1)·g;  v ← β2·v + (1−β2)·g²;  param ← param − step_size · m / (sqrt(v)/sqrt(bc2) + eps)
// for one parameter, skipping an index past the end
fn adam_at(index: u32) {
    if index >= arrayLength(&param) {
        return;
    }
    let g = grad[index];
    let m_new = p.beta1 * m[index] + (1.0 - p.beta1) * g;
    let v_new = p.beta2 * v[index] + (1.0 - p.beta2) * g * g;
    m[index] = m_new;
    v[index] = v_new;
    param[index] -= p.step_size * m_new / (sqrt(v_new) / p.bias_correction2_sqrt + p.eps);
}

// Four parameters per invocation (`element_quad`).
@compute @workgroup_size(64)
fn adam_step(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let at = element_quad(id, groups);
    adam_at(at.x);
    adam_at(at.y);
    adam_at(at.z);
    adam_at(at.w);
}
