//! Compile errors of an edited shader, located in the user's file: the
//! device compiles common.wgsl, then the file, so a location past
//! common.wgsl's lines is counted in the file. Natively naga parses and
//! validates the text (no device needed); in the browser the device's own
//! compilation messages are located the same way.

use std::fmt;

use crate::ops::kernel::COMMON;

/// A compile error, located in the user's file.
#[derive(Clone, Debug, PartialEq)]
pub struct Diagnostic {
    pub file: String,
    /// 1-based; 0 when the error has no location (then `message` names the entry point).
    pub line: usize,
    pub column: usize,
    pub message: String,
    /// The offending line and a caret under the column.
    pub excerpt: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            return write!(f, "{}: {}", self.file, self.message);
        }
        write!(f, "{}:{}:{}: {}\n{}", self.file, self.line, self.column, self.message, self.excerpt)
    }
}

/// Why `text` (the file `name`) would not compile after the shipped
/// common.wgsl (natively), located in the user's file (or in common.wgsl), or None when
/// it compiles and has every entry point in `entries`.
#[cfg(not(target_arch = "wasm32"))]
pub fn diagnose(name: &str, text: &str, entries: &[&str]) -> Option<Diagnostic> {
    diagnose_with(COMMON.source, name, text, entries)
}

/// Where a location in `prelude` + "\n" + `text` falls: in the user's file
/// `name`, or in common.wgsl; `line` and `column` are 1-based, as the compilers count.
pub fn locate(prelude: &str, name: &str, text: &str, at: Option<(usize, usize)>, message: String) -> Diagnostic {
    // Lines before the file's first line: the prelude's, then the joining newline.
    let prelude_lines = prelude.matches('\n').count() + 1;
    let Some((line, column)) = at.filter(|&(line, _)| line > 0) else {
        return Diagnostic { file: name.into(), line: 0, column: 0, message, excerpt: String::new() };
    };
    let (file, line, source) = if line > prelude_lines {
        (name.to_string(), line - prelude_lines, text)
    } else {
        (COMMON.name.to_string(), line, prelude)
    };
    let code = source.lines().nth(line - 1).unwrap_or("");
    let excerpt = format!("    {code}\n    {}^", " ".repeat(column.saturating_sub(1)));
    Diagnostic { file, line, column, message, excerpt }
}

/// `diagnose` with `prelude` as the text of common.wgsl.
#[cfg(not(target_arch = "wasm32"))]
pub fn diagnose_with(prelude: &str, name: &str, text: &str, entries: &[&str]) -> Option<Diagnostic> {
    let combined = format!("{prelude}\n{text}");
    let locate = |at: Option<naga::SourceLocation>, message: String| {
        let at = at.map(|at| (at.line_number as usize, at.line_position as usize));
        locate(prelude, name, text, at, message)
    };
    let module = match naga::front::wgsl::parse_str(&combined) {
        Ok(module) => module,
        Err(e) => return Some(locate(e.location(&combined), e.message().to_string())),
    };
    let mut validator =
        naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::all());
    if let Err(e) = validator.validate(&module) {
        let message = e.as_inner().to_string();
        let named = e.spans().next().map(|(_, label)| format!("{message} ({label})")).unwrap_or(message);
        return Some(locate(e.location(&combined), named));
    }
    let missing = entries.iter().find(|entry| !module.entry_points.iter().any(|e| e.name == **entry))?;
    Some(locate(None, format!("has no entry point {missing}, which octconv launches")))
}

impl super::Gpu {
    /// The device's first compile error for `text` (the file `name`) after
    /// `prelude`, located in the user's file; None when it compiles. A
    /// missing entry point shows up later, when its pipeline is made.
    pub async fn diagnose_on_device(&self, prelude: &str, name: &str, text: &str) -> Option<Diagnostic> {
        let module = self.device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(name),
            source: wgpu::ShaderSource::Wgsl(format!("{prelude}\n{text}").into()),
        });
        let info = module.get_compilation_info().await;
        let error = info.messages.into_iter().find(|m| m.message_type == wgpu::CompilationMessageType::Error)?;
        let at = error.location.map(|at| (at.line_number as usize, at.line_position as usize));
        Some(locate(prelude, name, text, at, error.message))
    }
}
