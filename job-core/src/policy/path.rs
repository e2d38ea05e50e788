//! Destination paths, canonicalized once at the edge.

use std::fmt;

use serde::{Serialize, Serializer};

use crate::model::Os;
use crate::{Error, Result};

/// Longest accepted path, in bytes.
pub const MAX_PATH_LEN: usize = 4096;

/// An absolute destination path on a target host, in canonical form.
///
/// It can only be built by [`TargetPath::parse`], which refuses relative paths, `..`
/// components, NUL and control characters, and folds what names the same place:
///
/// - POSIX: `//` and `/./` fold to `/`, a trailing `/` is dropped (`/etc//ssh/./` is
///   `/etc/ssh`).
/// - Windows: either separator is accepted and `\` is produced; the drive letter is
///   upper-cased; trailing dots and spaces of a component are dropped, as Windows itself
///   does (`C:/Windows./System32` is `C:\Windows\System32`); alternate data streams
///   (`file:stream`), UNC (`\\server\share`) and device (`\\?\`) paths are refused.
///   Comparisons are case-insensitive ([`TargetPath::key`]).
///
/// Canonicalization is idempotent: parsing the canonical form yields the same path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TargetPath {
    text: String,
    key: String,
    windows: bool,
}

impl TargetPath {
    /// Parses `raw` as an absolute path on a host running `os`, naming `field` on refusal.
    pub fn parse(field: &str, raw: &str, os: Os) -> Result<Self> {
        let bad = |reason: &str| Error::invalid(field, format!("`{}`: {reason}", shown(raw)));
        if raw.is_empty() {
            return Err(Error::invalid(field, "must not be empty"));
        }
        if raw.len() > MAX_PATH_LEN {
            return Err(Error::invalid(
                field,
                format!("must be at most {MAX_PATH_LEN} bytes"),
            ));
        }
        if raw.contains('\0') {
            return Err(bad("must not contain NUL"));
        }
        if raw.chars().any(char::is_control) {
            return Err(bad("must not contain control characters"));
        }
        match os {
            Os::Linux => Self::parse_posix(raw).map_err(&bad),
            Os::Windows => Self::parse_windows(raw).map_err(bad),
        }
    }

    fn parse_posix(raw: &str) -> std::result::Result<Self, &'static str> {
        if !raw.starts_with('/') {
            return Err("must be an absolute path (starting with `/`)");
        }
        let mut text = String::with_capacity(raw.len());
        for part in raw.split('/') {
            match part {
                "" | "." => {}
                ".." => return Err("must not contain `..`"),
                p => {
                    text.push('/');
                    text.push_str(p);
                }
            }
        }
        if text.is_empty() {
            text.push('/');
        }
        Ok(Self {
            key: text.clone(),
            text,
            windows: false,
        })
    }

    fn parse_windows(raw: &str) -> std::result::Result<Self, &'static str> {
        let is_sep = |c: char| c == '\\' || c == '/';
        if raw.starts_with(is_sep) {
            if raw.chars().nth(1).is_some_and(is_sep) {
                return Err("UNC and device paths are not supported as destinations");
            }
            return Err("must be an absolute path with a drive letter (`C:\\…`)");
        }
        let mut chars = raw.chars();
        let (Some(drive), Some(':')) = (chars.next(), chars.next()) else {
            return Err("must be an absolute path with a drive letter (`C:\\…`)");
        };
        if !drive.is_ascii_alphabetic() {
            return Err("must be an absolute path with a drive letter (`C:\\…`)");
        }
        let rest = chars.as_str();
        if !rest.is_empty() && !rest.starts_with(is_sep) {
            return Err("a drive-relative path (`C:foo`) is not absolute");
        }
        let mut text = String::with_capacity(raw.len());
        text.push(drive.to_ascii_uppercase());
        text.push(':');
        for part in rest.split(is_sep) {
            // Windows ignores trailing dots and spaces of a name.
            let trimmed = part.trim_end_matches(['.', ' ']);
            match trimmed {
                // `.` and empty components fold away; `..` (and `...`, which Windows
                // may read the same way) are refused.
                "" if part.matches('.').count() >= 2 => return Err("must not contain `..`"),
                "" => {}
                p if p.contains(':') => {
                    return Err("must not name an alternate data stream (`:`)");
                }
                p if p.contains(['<', '>', '"', '|', '?', '*']) => {
                    return Err("must not contain `< > \" | ? *`");
                }
                p => {
                    text.push('\\');
                    text.push_str(p);
                }
            }
        }
        if text.len() == 2 {
            text.push('\\');
        }
        Ok(Self {
            key: text.to_lowercase(),
            text,
            windows: true,
        })
    }

    /// The canonical path.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The form used for comparisons: the canonical path, lower-cased for Windows.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Whether it is a Windows path.
    pub fn is_windows(&self) -> bool {
        self.windows
    }

    /// The operating system the path is for.
    pub fn os(&self) -> Os {
        if self.windows { Os::Windows } else { Os::Linux }
    }

    /// Whether `self` is `prefix` or lies under it (whole components only: `/etc` covers
    /// `/etc/ssh` but not `/etcetera`). Paths of different systems never cover each other.
    pub fn starts_with(&self, prefix: &TargetPath) -> bool {
        if self.windows != prefix.windows {
            return false;
        }
        let (p, k) = (prefix.key(), self.key());
        let sep = if self.windows { '\\' } else { '/' };
        match k.strip_prefix(p) {
            Some("") => true,
            Some(rest) => p.ends_with(sep) || rest.starts_with(sep),
            None => false,
        }
    }
}

fn shown(raw: &str) -> String {
    let s: String = raw.chars().take(120).collect();
    s.escape_default().to_string()
}

impl fmt::Display for TargetPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for TargetPath {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn posix(s: &str) -> Result<String> {
        TargetPath::parse("dest", s, Os::Linux).map(|p| p.as_str().to_owned())
    }

    fn win(s: &str) -> Result<String> {
        TargetPath::parse("dest", s, Os::Windows).map(|p| p.as_str().to_owned())
    }

    #[test]
    fn posix_paths_fold_slashes_dots_and_trailing_separators() {
        assert_eq!(posix("/etc//ssh/./").unwrap(), "/etc/ssh");
        assert_eq!(posix("//").unwrap(), "/");
        assert_eq!(posix("/./.").unwrap(), "/");
    }

    #[test]
    fn windows_paths_accept_either_separator_and_upper_case_the_drive() {
        assert_eq!(
            win("c:/Windows//System32/").unwrap(),
            r"C:\Windows\System32"
        );
        assert_eq!(win(r"c:\").unwrap(), r"C:\");
        assert_eq!(win("c:").unwrap(), r"C:\");
        assert_eq!(
            win(r"C:\Windows.\ System32 ").unwrap(),
            r"C:\Windows\ System32"
        );
    }

    #[test]
    fn relative_parent_and_odd_paths_are_refused() {
        for bad in ["", "etc", "./etc", "/etc/../root", "/a\0b", "/a\nb"] {
            assert!(posix(bad).is_err(), "{bad:?}");
        }
        for bad in [
            r"Windows",
            r"\Windows",
            r"\\server\share",
            r"\\?\C:\x",
            r"C:Windows",
            r"C:\a\..\b",
            r"C:\a\...\b",
            r"C:\file.txt:stream",
            r"C:\a*",
        ] {
            assert!(win(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn prefixes_cover_whole_components_only() {
        let p = |s| TargetPath::parse("p", s, Os::Linux).unwrap();
        assert!(p("/etc/ssh").starts_with(&p("/etc")));
        assert!(p("/etc").starts_with(&p("/etc")));
        assert!(!p("/etcetera").starts_with(&p("/etc")));
        assert!(p("/anything").starts_with(&p("/")));
        let w = |s| TargetPath::parse("p", s, Os::Windows).unwrap();
        assert!(w(r"c:\WINDOWS\system32").starts_with(&w(r"C:\Windows")));
        assert!(w(r"d:\x").starts_with(&w(r"D:\")));
        assert!(!w(r"C:\Windows").starts_with(&p("/")));
    }
}
