//! How an op reaches the GPU: which WGSL file and entry point computes it,
//! its typed uniform parameters, which of the op's tensors go to which
//! binding, and the dispatch grid. These are plain descriptions; `gpu`
//! compiles and runs them.
//!
//! Shapes reach a kernel through a small uniform buffer rather than pipeline
//! override constants: one pipeline then serves every shape, so a model
//! compiles each kernel once (compiling is slow on software drivers) and the
//! check harness can sweep shapes without new pipelines.

/// Invocations per workgroup of every kernel (`WORKGROUP_SIZE` in common.wgsl).
pub const WORKGROUP_SIZE: u32 = 64;

/// Elements one invocation of an element-wise or Adam kernel handles, a
/// dispatch apart (`element_quad` in common.wgsl): with one each, a software
/// driver spends more on each invocation than on its work.
pub const ELEMENTS_PER_INVOCATION: usize = 4;

/// The invocations an element-wise kernel needs for `count` elements.
pub fn per_invocation(count: usize) -> usize {
    count.div_ceil(ELEMENTS_PER_INVOCATION)
}

/// WebGPU's guaranteed storage binding size (128 MiB): the largest tensor a
/// lowering may make for one kernel to bind (llvmpipe's limit too).
pub const MAX_BINDING_BYTES: usize = 128 << 20;

/// Prepended to every shader: the launch convention and the shared tile helpers.
pub const COMMON: ShaderFile = ShaderFile { name: "common.wgsl", source: include_str!("../../shaders/common.wgsl") };

/// A WGSL file in `shaders/`, one per op family, built into the binary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ShaderFile {
    pub name: &'static str,
    pub source: &'static str,
}

/// The layout of a uniform parameter struct, as the Rust mirror declares it.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct ParamsLayout {
    /// The WGSL struct's name (the same as the Rust struct's).
    pub name: &'static str,
    pub size: usize,
    pub fields: &'static [&'static str],
}

/// A `#[repr(C)]` mirror of a WGSL parameter struct, field for field.
pub trait KernelParams: bytemuck::Pod {
    const LAYOUT: ParamsLayout;

    /// The struct as the 32-bit words written into the uniform buffer.
    fn words(&self) -> Vec<u32> {
        bytemuck::pod_collect_to_vec(bytemuck::bytes_of(self))
    }
}

/// Declares the Rust mirror of a WGSL parameter struct: the same name and
/// field names, 32-bit fields in order (a test compares both with the WGSL).
#[macro_export]
macro_rules! kernel_params {
    ($(#[$meta:meta])* pub struct $name:ident { $($(#[$field_meta:meta])* pub $field:ident: $ty:ty,)* }) => {
        $(#[$meta])*
        #[repr(C)]
        #[derive(Clone, Copy, Debug, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
        pub struct $name { $($(#[$field_meta])* pub $field: $ty,)* }

        impl $crate::ops::kernel::KernelParams for $name {
            const LAYOUT: $crate::ops::kernel::ParamsLayout = $crate::ops::kernel::ParamsLayout {
                name: stringify!($name),
                size: std::mem::size_of::<$name>(),
                fields: &[$(stringify!($field)),*],
            };
        }
    };
}

/// One compute entry point. Its bindings are: 0 the uniform parameters, then
/// `reads` read-only storage buffers, then `writes` read-write ones.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Kernel {
    pub shader: ShaderFile,
    pub entry: &'static str,
    pub params: &'static ParamsLayout,
    pub reads: u32,
    pub writes: u32,
    /// The parameter word that, set to 1, makes the kernel apply a ReLU to
    /// what it writes (kernels that can absorb a following ReLU), taken from
    /// the field's offset in the typed parameters.
    pub relu_word: Option<usize>,
    /// Invocations per workgroup, as the entry point's `@workgroup_size` says.
    pub workgroup_size: u32,
}

impl Kernel {
    pub const fn new(
        shader: ShaderFile,
        entry: &'static str,
        params: &'static ParamsLayout,
        reads: u32,
        writes: u32,
    ) -> Kernel {
        Kernel { shader, entry, params, reads, writes, relu_word: None, workgroup_size: WORKGROUP_SIZE }
    }

    /// The same kernel, declared with `@workgroup_size(size)`: a kernel with
    /// few, heavy invocations (`matmul_wide`) still spreads over a software
    /// driver's threads, which take a workgroup each.
    pub const fn with_workgroup_size(self, size: u32) -> Kernel {
        Kernel { workgroup_size: size, ..self }
    }

    /// The same kernel, able to apply a ReLU when the parameter at byte `offset` is 1.
    pub const fn with_relu_at(self, offset: usize) -> Kernel {
        Kernel { relu_word: Some(offset / 4), ..self }
    }
}

/// How the heavy kernels (convolutions and matrix products) divide their work.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Tiling {
    /// Each invocation accumulates a small tile in registers; no workgroup
    /// memory, no barriers. Software drivers (llvmpipe, SwiftShader) run a
    /// workgroup as SIMD lanes of one CPU thread and pay dearly for barriers.
    Registers,
    /// Registers, with the matrix products at least 32×16 big on 32×16
    /// tiles instead of 8×8 (`matmul_wide`): for llvmpipe, which loads a
    /// storage value lane by lane, so fewer loads per multiply-add pay off
    /// there. SwiftShader runs the wide tile slower.
    WideRegisters,
    /// A workgroup stages tiles of both operands in workgroup memory and
    /// shares them, the classic GPU matrix product: for hardware GPUs.
    Workgroup,
}

impl Tiling {
    pub const ALL: [Tiling; 3] = [Tiling::Registers, Tiling::WideRegisters, Tiling::Workgroup];

    pub fn name(self) -> &'static str {
        match self {
            Tiling::Registers => "registers",
            Tiling::WideRegisters => "wide",
            Tiling::Workgroup => "workgroup",
        }
    }

    /// The variant `name` names, as `name` writes it.
    pub fn from_name(name: &str) -> Option<Tiling> {
        Tiling::ALL.into_iter().find(|tiling| tiling.name() == name)
    }
}

/// Which of an op's tensors a storage binding receives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operand {
    /// The op's input number k.
    Input(usize),
    /// The op's result.
    Output,
}

/// A kernel with its parameters and the number of work items to cover.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Launch {
    pub kernel: &'static Kernel,
    pub params: Vec<u32>,
    pub work_items: u32,
    /// For each storage binding of the kernel, the op's tensor bound there. A
    /// binding the op does not use (a bias it is told to skip) gets another.
    pub bind: Vec<Operand>,
    /// An explicit dispatch grid; otherwise `work_items` are spread flat.
    pub grid: Option<[u32; 3]>,
}

impl Launch {
    /// A launch binding the op's inputs, then its output, in order.
    pub fn new(kernel: &'static Kernel, params: &impl KernelParams, work_items: usize) -> Self {
        let inputs = (kernel.reads + kernel.writes - 1) as usize;
        let mut bind: Vec<Operand> = (0..inputs).map(Operand::Input).collect();
        bind.push(Operand::Output);
        Launch { kernel, params: params.words(), work_items: work_items as u32, bind, grid: None }
    }

    /// A launch over a grid of `x_items` work items along x (in workgroups of
    /// 64) by `y` by `z` workgroups, for kernels that read their tile from the
    /// workgroup id.
    pub fn grid(kernel: &'static Kernel, params: &impl KernelParams, x_items: usize, y: usize, z: usize) -> Self {
        let mut launch = Launch::new(kernel, params, x_items * y * z);
        launch.grid = Some([(x_items as u32).div_ceil(kernel.workgroup_size).max(1), y as u32, z as u32]);
        launch
    }

    /// The same grid launch `z` times along the grid's z (the batch of a batched kernel).
    pub fn repeated(mut self, z: usize) -> Self {
        let grid = self.grid.as_mut().expect("only grid launches are repeated");
        grid[2] *= word(z);
        self.work_items *= word(z);
        self
    }

    /// The same launch with the op's tensors bound as `bind` says.
    pub fn binding(mut self, bind: impl Into<Vec<Operand>>) -> Self {
        self.bind = bind.into();
        debug_assert_eq!(self.bind.len(), (self.kernel.reads + self.kernel.writes) as usize);
        self
    }

    /// Makes the kernel apply a ReLU to its output, if it can; says whether it can.
    pub fn fuse_relu(&mut self) -> bool {
        match self.kernel.relu_word {
            Some(word) => {
                self.params[word] = 1;
                true
            }
            None => false,
        }
    }

    /// The buffers to bind, picked from the op's `inputs` and `output`.
    pub fn buffers<'a, T: ?Sized>(&self, inputs: &[&'a T], output: &'a T) -> Vec<&'a T> {
        self.bind
            .iter()
            .map(|operand| match *operand {
                Operand::Input(k) => inputs[k],
                Operand::Output => output,
            })
            .collect()
    }

    /// The dispatch grid: up to 65535 workgroups along x, the rest along y.
    pub fn workgroups(&self) -> [u32; 3] {
        if let Some(grid) = self.grid {
            return grid;
        }
        let groups = self.work_items.div_ceil(self.kernel.workgroup_size).max(1);
        let x = groups.min(65535);
        [x, groups.div_ceil(x), 1]
    }
}

/// The workgroup-tiled launch where `tiling` asks for it and its grid fits,
/// else the register-blocked one.
pub fn choose(tiling: Tiling, tiled: Option<Launch>, registers: Launch) -> Launch {
    tiled.filter(|_| tiling == Tiling::Workgroup).unwrap_or(registers)
}

/// Side of the output tile of one workgroup of a `_tiled` kernel (`BLOCK` in common.wgsl).
pub const BLOCK: usize = 32;

/// A `_tiled` kernel's launch: one workgroup per BLOCK×BLOCK tile of its
/// `rows` × `cols` result, or None when the grid would exceed 65535 along x or y.
pub fn block_tiled(kernel: &'static Kernel, params: &impl KernelParams, rows: usize, cols: usize) -> Option<Launch> {
    let (x, y) = (cols.div_ceil(BLOCK), rows.div_ceil(BLOCK));
    (x <= 65535 && y <= 65535).then(|| Launch::grid(kernel, params, x * kernel.workgroup_size as usize, y, 1))
}

/// `usize` → the 32-bit word a kernel parameter holds.
pub fn word(v: usize) -> u32 {
    v as u32
}
