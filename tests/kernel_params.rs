//! Each kernel's typed parameters (`kernel_params!`) against the WGSL struct
//! it mirrors, reflected by naga: the same name, size and field names in the
//! same order, bound at binding 0 of the kernel's shader; and every entry
//! point the kernel table names exists there.

use naga::{AddressSpace, TypeInner};
use octconv::ops::kernel::COMMON;
use octconv::ops::{all_kernels, FAMILIES};

/// A shader as the device compiles it: common.wgsl, then the family's file.
fn parse(source: &str, name: &str) -> naga::Module {
    naga::front::wgsl::parse_str(&format!("{}\n{source}", COMMON.source))
        .unwrap_or_else(|e| panic!("{name} does not parse: {}", e.emit_to_string(source)))
}

#[test]
fn every_kernel_parameter_struct_matches_its_wgsl() {
    let mut checked = 0;
    for kernel in all_kernels() {
        let module = parse(kernel.shader.source, kernel.shader.name);
        let wanted = kernel.params;
        let (handle, ty) = module
            .types
            .iter()
            .find(|(_, ty)| ty.name.as_deref() == Some(wanted.name))
            .unwrap_or_else(|| panic!("{} declares no struct {}", kernel.shader.name, wanted.name));
        let TypeInner::Struct { members, span } = &ty.inner else { panic!("{} is not a struct", wanted.name) };
        let names: Vec<&str> = members.iter().map(|m| m.name.as_deref().unwrap_or("")).collect();
        assert_eq!(names, wanted.fields, "{}: the fields of {} differ from the Rust mirror", kernel.entry, wanted.name);
        assert_eq!(*span as usize, wanted.size, "{}: {} has another size in WGSL", kernel.entry, wanted.name);
        let uniform = module.global_variables.iter().find(|(_, v)| {
            v.space == AddressSpace::Uniform && v.binding.as_ref().is_some_and(|b| b.group == 0 && b.binding == 0)
        });
        let (_, uniform) = uniform.unwrap_or_else(|| panic!("{} has no uniform at binding 0", kernel.shader.name));
        assert_eq!(uniform.ty, handle, "{}: binding 0 is not a {}", kernel.entry, wanted.name);
        assert!(
            module.entry_points.iter().any(|e| e.name == kernel.entry),
            "{} has no entry point {}",
            kernel.shader.name,
            kernel.entry
        );
        checked += 1;
    }
    assert_eq!(checked, all_kernels().count());
    assert!(checked >= 25, "only {checked} kernels");
}

#[test]
fn every_family_shader_parses() {
    for family in FAMILIES {
        for shader in family.shaders {
            parse(shader.source, shader.name);
        }
    }
}
