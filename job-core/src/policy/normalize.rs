//! Normalization of a rendered script before command rules are matched.
//!
//! Command rules are written against a canonical form of the script, so that trivial
//! rewrites (extra spaces, quotes, a line continuation, a command hidden in `$(…)`) do not
//! slip past them. The canonical form is a list of *segments*, one per simple command:
//!
//! - line continuations are joined: `\` + newline (POSIX shells), `` ` `` + newline
//!   (PowerShell) and `^` + newline (cmd);
//! - the script is split on newlines, `;`, `&` (so `&&`), `|` (so `||`), backticks, `$(`, `(`
//!   and `)` — except an empty `()` pair, kept so that function definitions stay visible;
//! - single and double quotes are removed (`"r"m` becomes `rm`);
//! - a backslash at the start of a word is dropped (`\rm` becomes `rm`, the alias bypass);
//! - runs of whitespace and other control characters fold to one space, and each segment is
//!   trimmed; empty segments are dropped.
//!
//! The segments are kept in one buffer separated by NUL bytes ([`SEGMENT_SEPARATOR`]), which
//! command rules treat as their line terminator: `^` and `$` anchor at segment boundaries and
//! `.` never crosses one. The rendered script never contains NUL itself (it is folded to a
//! space), so the separator is unambiguous.
//!
//! Normalization works on bytes: every byte it looks at is ASCII, and UTF-8 sequences pass
//! through untouched.

/// The byte that separates segments in a [`NormalizedScript`].
pub const SEGMENT_SEPARATOR: u8 = 0;

/// A script in the canonical form command rules are matched against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NormalizedScript {
    buf: Vec<u8>,
}

impl NormalizedScript {
    /// Normalizes `script` (see the [module documentation](self)).
    pub fn new(script: &str) -> Self {
        Self {
            buf: normalize(script.as_bytes()),
        }
    }

    /// The whole canonical form: segments separated by [`SEGMENT_SEPARATOR`].
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    /// The segments, in script order.
    pub fn segments(&self) -> impl Iterator<Item = &[u8]> {
        self.buf
            .split(|b| *b == SEGMENT_SEPARATOR)
            .filter(|s| !s.is_empty())
    }

    /// The segments as text (invalid UTF-8, which a `&str` script cannot produce, is
    /// replaced).
    pub fn segment_strings(&self) -> Vec<String> {
        self.segments()
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect()
    }

    /// The segment or segments that contain the byte range `start..end` of
    /// [`as_bytes`](Self::as_bytes), as text, separators shown as `; `.
    pub fn context_of(&self, start: usize, end: usize) -> String {
        let start = start.min(self.buf.len());
        let end = end.clamp(start, self.buf.len());
        let from = self.buf[..start]
            .iter()
            .rposition(|b| *b == SEGMENT_SEPARATOR)
            .map_or(0, |p| p + 1);
        let to = self.buf[end..]
            .iter()
            .position(|b| *b == SEGMENT_SEPARATOR)
            .map_or(self.buf.len(), |p| end + p);
        let text = String::from_utf8_lossy(&self.buf[from..to]).replace('\0', "; ");
        truncate_chars(text, 240)
    }
}

fn truncate_chars(text: String, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text,
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Last {
    /// Start of a segment (nothing written since the last separator).
    SegmentStart,
    /// A folded space was written.
    Space,
    /// Anything else.
    Other,
}

struct Writer {
    out: Vec<u8>,
    last: Last,
}

impl Writer {
    #[inline]
    fn separator(&mut self) {
        if self.last == Last::Space {
            self.out.pop();
        }
        if self.last != Last::SegmentStart && !self.out.is_empty() {
            self.out.push(SEGMENT_SEPARATOR);
        }
        self.last = Last::SegmentStart;
    }

    #[inline]
    fn space(&mut self) {
        if self.last == Last::Other {
            self.out.push(b' ');
            self.last = Last::Space;
        }
    }

    #[inline]
    fn byte(&mut self, b: u8) {
        self.out.push(b);
        self.last = Last::Other;
    }

    fn at_word_start(&self) -> bool {
        self.last != Last::Other
    }

    fn finish(mut self) -> Vec<u8> {
        if self.last == Last::Space {
            self.out.pop();
        }
        if self.out.last() == Some(&SEGMENT_SEPARATOR) {
            self.out.pop();
        }
        self.out
    }
}

/// Length of a line break starting at `i` (`\n`, `\r\n` or a lone `\r`), if any.
fn line_break_at(s: &[u8], i: usize) -> Option<usize> {
    match s.get(i) {
        Some(b'\n') => Some(1),
        Some(b'\r') if s.get(i + 1) == Some(&b'\n') => Some(2),
        Some(b'\r') => Some(1),
        _ => None,
    }
}

/// Length of a line continuation starting at `i`: the continuation character, optional
/// blanks, then a line break.
fn continuation_at(s: &[u8], i: usize) -> Option<usize> {
    if !matches!(s.get(i), Some(b'\\' | b'`' | b'^')) {
        return None;
    }
    let mut j = i + 1;
    while matches!(s.get(j), Some(b' ' | b'\t')) {
        j += 1;
    }
    line_break_at(s, j).map(|n| j + n - i)
}

/// What normalization does with a byte.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    /// Copied as it is.
    Plain,
    /// Folds into one space.
    Blank,
    /// Ends a segment.
    Separator,
    /// Removed (quotes).
    Quote,
    /// Needs a closer look: `\`, `` ` ``, `^`, `(`, `$`, `\r`.
    Other,
}

const CLASSES: [Class; 256] = {
    let mut t = [Class::Plain; 256];
    let mut b = 0;
    while b < 0x20 {
        t[b] = Class::Blank;
        b += 1;
    }
    t[0x7f] = Class::Blank;
    t[b' ' as usize] = Class::Blank;
    t[b'\n' as usize] = Class::Separator;
    t[b';' as usize] = Class::Separator;
    t[b'&' as usize] = Class::Separator;
    t[b'|' as usize] = Class::Separator;
    t[b')' as usize] = Class::Separator;
    t[b'\'' as usize] = Class::Quote;
    t[b'"' as usize] = Class::Quote;
    t[b'\r' as usize] = Class::Other;
    t[b'\\' as usize] = Class::Other;
    t[b'`' as usize] = Class::Other;
    t[b'^' as usize] = Class::Other;
    t[b'(' as usize] = Class::Other;
    t[b'$' as usize] = Class::Other;
    t
};

fn normalize(s: &[u8]) -> Vec<u8> {
    let mut w = Writer {
        out: Vec::with_capacity(s.len()),
        last: Last::SegmentStart,
    };
    let mut i = 0;
    while i < s.len() {
        let b = s[i];
        match CLASSES[usize::from(b)] {
            Class::Plain => {
                // Copy the whole run of plain bytes at once. A single space between two
                // plain bytes normalizes to itself, so the run goes on across it: shell
                // text is mostly short words, and this makes runs whole phrases.
                let mut j = i + 1;
                while j < s.len() {
                    if CLASSES[usize::from(s[j])] == Class::Plain {
                        j += 1;
                    } else if s[j] == b' '
                        && s.get(j + 1)
                            .is_some_and(|c| CLASSES[usize::from(*c)] == Class::Plain)
                    {
                        j += 2;
                    } else {
                        break;
                    }
                }
                w.out.extend_from_slice(&s[i..j]);
                w.last = Last::Other;
                i = j;
                continue;
            }
            Class::Blank => w.space(),
            Class::Separator => w.separator(),
            Class::Quote => {}
            Class::Other => {
                if let Some(n) = continuation_at(s, i) {
                    // A joined line continuation reads as a blank.
                    w.space();
                    i += n;
                    continue;
                }
                match b {
                    b'\r' | b'`' => w.separator(),
                    b'(' if s.get(i + 1) == Some(&b')') => {
                        w.byte(b'(');
                        w.byte(b')');
                        i += 1;
                    }
                    b'(' => w.separator(),
                    b'$' if s.get(i + 1) == Some(&b'(') => {
                        w.separator();
                        i += 1;
                    }
                    b'\\'
                        if w.at_word_start()
                            && s.get(i + 1).is_some_and(u8::is_ascii_alphanumeric) => {}
                    _ => w.byte(b),
                }
            }
        }
        i += 1;
    }
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The straightforward byte-at-a-time-per-run normalization, kept as the reference the
    /// faster one must agree with.
    fn reference(s: &[u8]) -> Vec<u8> {
        let mut w = Writer {
            out: Vec::with_capacity(s.len()),
            last: Last::SegmentStart,
        };
        let mut i = 0;
        while i < s.len() {
            let b = s[i];
            match CLASSES[usize::from(b)] {
                Class::Plain => {
                    // Copy the whole run of plain bytes at once.
                    let run = s[i..]
                        .iter()
                        .take_while(|c| CLASSES[usize::from(**c)] == Class::Plain)
                        .count();
                    w.out.extend_from_slice(&s[i..i + run]);
                    w.last = Last::Other;
                    i += run;
                    continue;
                }
                Class::Blank => w.space(),
                Class::Separator => w.separator(),
                Class::Quote => {}
                Class::Other => {
                    if let Some(n) = continuation_at(s, i) {
                        // A joined line continuation reads as a blank.
                        w.space();
                        i += n;
                        continue;
                    }
                    match b {
                        b'\r' | b'`' => w.separator(),
                        b'(' if s.get(i + 1) == Some(&b')') => {
                            w.byte(b'(');
                            w.byte(b')');
                            i += 1;
                        }
                        b'(' => w.separator(),
                        b'$' if s.get(i + 1) == Some(&b'(') => {
                            w.separator();
                            i += 1;
                        }
                        b'\\'
                            if w.at_word_start()
                                && s.get(i + 1).is_some_and(u8::is_ascii_alphanumeric) => {}
                        _ => w.byte(b),
                    }
                }
            }
            i += 1;
        }
        w.finish()
    }

    proptest::proptest! {
        #[test]
        fn the_fast_path_agrees_with_the_reference(
            script in proptest::string::string_regex("[a-z /\\t\\n;&|()$`'\"\\\\^\\r-]{0,200}").unwrap()
        ) {
            proptest::prop_assert_eq!(normalize(script.as_bytes()), reference(script.as_bytes()));
        }
    }

    fn segs(s: &str) -> Vec<String> {
        NormalizedScript::new(s).segment_strings()
    }

    #[test]
    fn whitespace_is_folded_and_segments_trimmed() {
        assert_eq!(segs("  rm \t  -rf   /  "), ["rm -rf /"]);
    }

    #[test]
    fn separators_split_segments() {
        assert_eq!(
            segs("a; b && c || d | e\nf & g"),
            ["a", "b", "c", "d", "e", "f", "g"]
        );
    }

    #[test]
    fn substitutions_become_segments() {
        assert_eq!(segs("echo $(rm -rf /)"), ["echo", "rm -rf /"]);
        assert_eq!(segs("echo `rm -rf /`"), ["echo", "rm -rf /"]);
    }

    #[test]
    fn quotes_and_word_start_backslashes_are_removed() {
        assert_eq!(segs(r#"\rm "-rf" '/'"#), ["rm -rf /"]);
        assert_eq!(segs(r#""r"m -rf /"#), ["rm -rf /"]);
        assert_eq!(segs(r"rd /s /q c:\"), [r"rd /s /q c:\"]);
    }

    #[test]
    fn line_continuations_are_joined() {
        assert_eq!(segs("rm -rf \\\n /"), ["rm -rf /"]);
        assert_eq!(segs("rm -rf \\\r\n/"), ["rm -rf /"]);
        assert_eq!(segs("Remove-Item `\n -Recurse"), ["Remove-Item -Recurse"]);
    }

    #[test]
    fn empty_parens_are_kept_for_function_definitions() {
        assert_eq!(segs(":(){ :|:& };:"), [":(){ :", ":", "}", ":"]);
    }

    #[test]
    fn context_shows_the_segments_around_a_range() {
        let n = NormalizedScript::new("echo hi; rm -rf /; ls");
        let at = n
            .as_bytes()
            .windows(2)
            .position(|w| w == b"rm")
            .unwrap_or(0);
        assert_eq!(n.context_of(at, at + 2), "rm -rf /");
    }
}
