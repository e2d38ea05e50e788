//! Which interpreter runs a script: chosen from the script's language and, within that
//! language's family, by a first-line shebang.
//!
//! - Shell and bash scripts run with `bash` unless the shebang names `sh` or `bash`.
//! - Python scripts run with `python3` unless the shebang names `python` or `python3`.
//! - PowerShell scripts run with `powershell` unless the shebang names `pwsh` or
//!   `powershell`.
//! - Batch scripts run with `cmd` and take no shebang.
//!
//! A shebang may name the interpreter by path (`#!/bin/sh`) or through `env`
//! (`#!/usr/bin/env python3`, `#!/usr/bin/env -S bash -e`), and may pass options (`-e`,
//! `-eu`, `-x`). Any other interpreter, or one of another language than the script's
//! (a bash shebang on a Python script would defeat the language's quoting of template
//! values), is refused with a clear error.
//!
//! CRLF line ends are normalized to LF for shell, bash and Python scripts; PowerShell and
//! batch scripts are left as written.
//!
//! ```
//! use job_core::interpreter::{Interpreter, prepare};
//! use job_core::model::ScriptLanguage;
//!
//! let p = prepare(ScriptLanguage::Shell, "#!/usr/bin/env sh\r\necho hi\r\n")?;
//! assert_eq!(p.interpreter, Interpreter::Sh);
//! assert_eq!(p.content, "#!/usr/bin/env sh\necho hi\n");
//! assert!(prepare(ScriptLanguage::Shell, "#!/usr/bin/perl\nprint 1").is_err());
//! # Ok::<(), job_core::Error>(())
//! ```

use std::fmt;

use crate::model::ScriptLanguage;
use crate::{Error, Result};

/// A program that runs scripts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Interpreter {
    /// `sh`.
    Sh,
    /// `bash`.
    Bash,
    /// `python` (whatever the host calls `python`).
    Python,
    /// `python3`.
    Python3,
    /// Windows PowerShell, `powershell`.
    Powershell,
    /// PowerShell 7+, `pwsh`.
    Pwsh,
    /// `cmd.exe`, for batch scripts.
    Cmd,
}

impl Interpreter {
    /// The interpreters a shebang may name.
    pub const SHEBANG_NAMES: [&'static str; 6] =
        ["sh", "bash", "python", "python3", "powershell", "pwsh"];

    /// The program name to execute.
    pub fn program(self) -> &'static str {
        match self {
            Self::Sh => "sh",
            Self::Bash => "bash",
            Self::Python => "python",
            Self::Python3 => "python3",
            Self::Powershell => "powershell",
            Self::Pwsh => "pwsh",
            Self::Cmd => "cmd",
        }
    }

    /// The interpreter a script of `language` runs with when it has no shebang.
    pub fn default_for(language: ScriptLanguage) -> Self {
        match language {
            ScriptLanguage::Shell | ScriptLanguage::Bash => Self::Bash,
            ScriptLanguage::Python => Self::Python3,
            ScriptLanguage::Powershell => Self::Powershell,
            ScriptLanguage::Bat => Self::Cmd,
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "sh" => Self::Sh,
            "bash" => Self::Bash,
            "python" => Self::Python,
            "python3" => Self::Python3,
            "powershell" => Self::Powershell,
            "pwsh" => Self::Pwsh,
            _ => return None,
        })
    }

    fn family(self) -> &'static [ScriptLanguage] {
        match self {
            Self::Sh | Self::Bash => &[ScriptLanguage::Shell, ScriptLanguage::Bash],
            Self::Python | Self::Python3 => &[ScriptLanguage::Python],
            Self::Powershell | Self::Pwsh => &[ScriptLanguage::Powershell],
            Self::Cmd => &[ScriptLanguage::Bat],
        }
    }
}

impl fmt::Display for Interpreter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.program())
    }
}

/// A script ready to hand to a transport: its interpreter, options and content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedScript {
    /// The program that runs it.
    pub interpreter: Interpreter,
    /// Options from the shebang (`-e`, `-eu`, `-x`), passed before the script.
    pub args: Vec<String>,
    /// The content, with line ends normalized for the language.
    pub content: String,
}

/// Chooses the interpreter for `content` of `language` and normalizes its line ends; see
/// the [module documentation](self). Errors are [`Error::Invalid`] for `script_content`.
pub fn prepare(language: ScriptLanguage, content: &str) -> Result<PreparedScript> {
    let content = match language {
        ScriptLanguage::Shell | ScriptLanguage::Bash | ScriptLanguage::Python => {
            crlf_to_lf(content.strip_prefix('\u{feff}').unwrap_or(content))
        }
        ScriptLanguage::Powershell | ScriptLanguage::Bat => content.to_owned(),
    };
    let (interpreter, args) = match shebang(&content) {
        None => (Interpreter::default_for(language), Vec::new()),
        Some(line) => parse_shebang(language, line)?,
    };
    Ok(PreparedScript {
        interpreter,
        args,
        content,
    })
}

/// The interpreter `content` of `language` runs with (see [`prepare`]).
pub fn select(language: ScriptLanguage, content: &str) -> Result<Interpreter> {
    match shebang(content.strip_prefix('\u{feff}').unwrap_or(content)) {
        None => Ok(Interpreter::default_for(language)),
        Some(line) => parse_shebang(language, line.trim_end_matches('\r')).map(|(i, _)| i),
    }
}

fn shebang(content: &str) -> Option<&str> {
    let first = content.lines().next()?;
    first.strip_prefix("#!")
}

fn refuse(reason: String) -> Error {
    Error::invalid("script_content", reason)
}

fn parse_shebang(language: ScriptLanguage, line: &str) -> Result<(Interpreter, Vec<String>)> {
    let shown = format!("#!{}", line.trim());
    if language == ScriptLanguage::Bat {
        return Err(refuse(format!(
            "batch scripts take no shebang, found `{shown}`"
        )));
    }
    let mut words = line.split_whitespace();
    let program = words
        .next()
        .ok_or_else(|| refuse("the shebang names no interpreter".to_owned()))?;
    let mut name = basename(program);
    if name == "env" {
        name = loop {
            match words.next() {
                Some("-S" | "--split-string") => {}
                Some(w) if w.starts_with('-') => {
                    return Err(refuse(format!(
                        "`{shown}`: env options other than -S are not supported"
                    )));
                }
                Some(w) => break basename(w),
                None => return Err(refuse(format!("`{shown}` names no interpreter"))),
            }
        };
    }
    let interpreter = Interpreter::from_name(name).ok_or_else(|| {
        refuse(format!(
            "`{shown}` names `{name}`; a shebang may name only {}",
            Interpreter::SHEBANG_NAMES.join(", ")
        ))
    })?;
    if !interpreter.family().contains(&language) {
        return Err(refuse(format!(
            "`{shown}` names `{name}`, which does not run {language} scripts"
        )));
    }
    let mut args = Vec::new();
    for word in words {
        let option = word.len() <= 32
            && (word.starts_with('-') || word.starts_with('+'))
            && word[1..]
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !option {
            return Err(refuse(format!(
                "`{shown}`: only options such as -e or -eu may follow the interpreter, found `{word}`"
            )));
        }
        args.push(word.to_owned());
    }
    Ok((interpreter, args))
}

/// Drops the carriage returns that end lines (`\r\n`, and the `\r\r\n` of files saved
/// twice by a Windows editor); a carriage return inside a line is kept.
fn crlf_to_lf(content: &str) -> String {
    let mut out = String::with_capacity(content.len());
    let mut lines = content.split('\n').peekable();
    while let Some(line) = lines.next() {
        if lines.peek().is_some() {
            out.push_str(line.trim_end_matches('\r'));
            out.push('\n');
        } else {
            out.push_str(line);
        }
    }
    out
}

fn basename(program: &str) -> &str {
    program.rsplit(['/', '\\']).next().unwrap_or(program)
}
