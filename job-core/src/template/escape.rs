//! Quoting of template values for each script language.
//!
//! Every function turns arbitrary text into one literal of the target language that
//! evaluates back to exactly that text, so a parameter value can never become code.

use std::fmt::Write as _;

use crate::model::ScriptLanguage;

/// Quotes `value` as a literal of `language`; `Err` with a reason when the language cannot
/// represent it safely (only batch files refuse some values).
pub fn quote(language: ScriptLanguage, value: &str) -> Result<String, String> {
    match language {
        ScriptLanguage::Shell | ScriptLanguage::Bash => Ok(shell_quote(value)),
        ScriptLanguage::Python => Ok(python_literal(value)),
        ScriptLanguage::Powershell => Ok(powershell_literal(value)),
        ScriptLanguage::Bat => bat_quote(value),
    }
}

/// A POSIX shell single-quoted word: `it's` becomes `'it'\''s'`. Nothing is special inside
/// single quotes, so the only character to handle is the quote itself.
pub fn shell_quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        if c == '\'' {
            out.push_str(r"'\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

/// A Python 3 string literal in double quotes, ASCII only: backslashes, quotes, control
/// characters and everything outside printable ASCII are escaped (`\n`, `\x1b`, `\u00e9`,
/// `\U0001f600`).
pub fn python_literal(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '\\' => out.push_str(r"\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str(r"\n"),
            '\r' => out.push_str(r"\r"),
            '\t' => out.push_str(r"\t"),
            ' '..='~' => out.push(c),
            c if (c as u32) < 0x100 => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if (c as u32) < 0x1_0000 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08x}", c as u32);
            }
        }
    }
    out.push('"');
    out
}

/// A PowerShell verbatim (single-quoted) string: nothing is expanded inside, and every
/// single quote — including the typographic ones PowerShell also accepts (`‘ ’ ‚ ‛`) — is
/// doubled.
pub fn powershell_literal(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        if matches!(c, '\'' | '\u{2018}' | '\u{2019}' | '\u{201a}' | '\u{201b}') {
            out.push(c);
        }
        out.push(c);
    }
    out.push('\'');
    out
}

/// A cmd.exe batch argument in double quotes with `%` doubled. Batch quoting cannot carry
/// a double quote, `!` (delayed expansion), line breaks or other control characters, so
/// such values are refused rather than guessed at.
pub fn bat_quote(value: &str) -> Result<String, String> {
    if let Some(c) = value
        .chars()
        .find(|c| matches!(c, '"' | '!') || c.is_control())
    {
        return Err(format!(
            "cannot be quoted safely for a batch script: contains {c:?}"
        ));
    }
    Ok(format!("\"{}\"", value.replace('%', "%%")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_quotes_survive_embedded_quotes() {
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("$(id)"), "'$(id)'");
    }

    #[test]
    fn python_literals_are_ascii_and_escaped() {
        assert_eq!(python_literal("a\"b\\c\n"), r#""a\"b\\c\n""#);
        assert_eq!(python_literal("é😀\u{1b}"), r#""\xe9\U0001f600\x1b""#);
    }

    #[test]
    fn powershell_doubles_every_kind_of_single_quote() {
        assert_eq!(powershell_literal("it's $x"), "'it''s $x'");
        assert_eq!(powershell_literal("a\u{2019}b"), "'a\u{2019}\u{2019}b'");
    }

    #[test]
    fn batch_refuses_what_it_cannot_quote() {
        assert_eq!(bat_quote("50% & more").unwrap(), "\"50%% & more\"");
        assert!(bat_quote("a\"b").is_err());
        assert!(bat_quote("a!b").is_err());
        assert!(bat_quote("a\nb").is_err());
    }
}
