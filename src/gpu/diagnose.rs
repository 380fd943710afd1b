//! Compile errors of an edited shader, located in the user's file: naga
//! parses and validates what the device would compile (common.wgsl, then the
//! file), and a location past common.wgsl's lines is counted in the file.

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
/// common.wgsl, located in the user's file (or in common.wgsl), or None when
/// it compiles and has every entry point in `entries`.
pub fn diagnose(name: &str, text: &str, entries: &[&str]) -> Option<Diagnostic> {
    diagnose_with(COMMON.source, name, text, entries)
}

/// `diagnose` with `prelude` as the text of common.wgsl.
pub fn diagnose_with(prelude: &str, name: &str, text: &str, entries: &[&str]) -> Option<Diagnostic> {
    let combined = format!("{prelude}\n{text}");
    // Lines before the file's first line: the prelude's, then the joining newline.
    let prelude_lines = prelude.matches('\n').count() + 1;
    let locate = |location: Option<naga::SourceLocation>, message: String| {
        let Some(at) = location else {
            return Diagnostic { file: name.into(), line: 0, column: 0, message, excerpt: String::new() };
        };
        let (mut file, mut line, mut source) = (name.to_string(), at.line_number as usize, text);
        if line > prelude_lines {
            line -= prelude_lines;
        } else {
            (file, source) = (COMMON.name.to_string(), prelude);
        }
        let column = at.line_position as usize;
        let code = source.lines().nth(line - 1).unwrap_or("");
        let excerpt = format!("    {code}\n    {}^", " ".repeat(column.saturating_sub(1)));
        Diagnostic { file, line, column, message, excerpt }
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
