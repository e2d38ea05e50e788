//! Template injection: a parameter value never becomes code unless the template says
//! `|safe`. Checked textually and, where the interpreter is installed, by running the
//! rendered script and comparing what it prints with the value.

use std::collections::BTreeMap;
use std::process::Command;

use job_core::model::ScriptLanguage;
use job_core::template::{Params, render_script};
use proptest::prelude::*;

fn params(value: &str) -> Params {
    Params::plain(&BTreeMap::from([("v".to_owned(), value.to_owned())])).unwrap()
}

fn render(language: ScriptLanguage, source: &str, value: &str) -> String {
    render_script(language, source, &params(value))
        .unwrap()
        .script()
        .to_owned()
}

const ATTEMPTS: &[&str] = &[
    "'; rm -rf / #",
    "\"; rm -rf / #",
    "$(rm -rf /)",
    "`rm -rf /`",
    "x\nrm -rf /",
    "x\r\nrm -rf /",
    "\\'; rm -rf / #",
    "{{ 7 * 7 }}",
    "{% for x in range(10) %}boom{% endfor %}",
    "${IFS}rm${IFS}-rf${IFS}/",
    "'\"'\"'; id; '",
    "\\",
    "\u{2019}; Remove-Item -Recurse C:\\ #",
    "'; Remove-Item -Recurse C:\\ #",
    "\"\"\"; import os; os.system('id') #",
    "\\\"; import os #",
    "$env:PATH; $(Stop-Computer)",
];

/// Runs `script` with `program args…` and returns its stdout, or `None` when the program
/// is not installed here.
fn run(program: &str, args: &[&str], script: &str) -> Option<Vec<u8>> {
    let out = Command::new(program).args(args).arg(script).output().ok()?;
    assert!(
        out.status.success(),
        "{program} failed on {script:?}: {out:?}"
    );
    Some(out.stdout)
}

#[test]
fn injection_attempts_stay_literal_text_in_every_language() {
    for value in ATTEMPTS {
        let shell = render(ScriptLanguage::Bash, "printf %s {{ v }}", value);
        if let Some(out) = run("bash", &["-c"], &shell) {
            assert_eq!(out, value.as_bytes(), "bash: {shell}");
        }
        if let Some(out) = run("sh", &["-c"], &shell) {
            assert_eq!(out, value.as_bytes(), "sh: {shell}");
        }
        let py = render(
            ScriptLanguage::Python,
            "import sys; sys.stdout.buffer.write({{ v }}.encode())",
            value,
        );
        if let Some(out) = run("python3", &["-c"], &py) {
            assert_eq!(out, value.as_bytes(), "python: {py}");
        }
        let ps = render(
            ScriptLanguage::Powershell,
            "[Console]::Out.Write({{ v }})",
            value,
        );
        assert!(
            ps.starts_with("[Console]::Out.Write('") && ps.ends_with("')"),
            "{ps}"
        );
        if let Some(out) = run("pwsh", &["-NoProfile", "-Command"], &ps) {
            assert_eq!(out, value.as_bytes(), "pwsh: {ps}");
        }
    }
}

#[test]
fn template_syntax_inside_a_value_is_not_evaluated() {
    let out = render(ScriptLanguage::Bash, "echo {{ v }}", "{{ 7 * 7 }}");
    assert_eq!(out, "echo '{{ 7 * 7 }}'");
}

#[test]
fn only_an_explicit_safe_filter_inserts_a_value_as_code() {
    let value = "ls -la; id";
    assert_eq!(
        render(ScriptLanguage::Bash, "{{ v }}", value),
        "'ls -la; id'"
    );
    assert_eq!(
        render(ScriptLanguage::Bash, "{{ v|safe }}", value),
        "ls -la; id"
    );
    assert_eq!(
        render(
            ScriptLanguage::Bash,
            "{% autoescape false %}{{ v }}{% endautoescape %}",
            value
        ),
        "ls -la; id"
    );
    // string operations produce new, unsafe strings: they are quoted again
    assert_eq!(
        render(ScriptLanguage::Bash, "{{ v ~ '' }}", value),
        "'ls -la; id'"
    );
    assert_eq!(
        render(ScriptLanguage::Bash, "{{ v|upper }}", value),
        "'LS -LA; ID'"
    );
    assert_eq!(
        render(ScriptLanguage::Bash, "{{ v|replace(\"'\", '') }}", "a'b"),
        "'ab'"
    );
}

/// Whether `word` is made only of single-quoted runs and `\'` between them.
fn only_quoted_text(word: &str) -> bool {
    let mut chars = word.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                if !chars.by_ref().any(|c| c == '\'') {
                    return false;
                }
            }
            '\\' => {
                if chars.next() != Some('\'') {
                    return false;
                }
            }
            _ => return false,
        }
    }
    true
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn any_value_round_trips_through_bash_and_python_unchanged(value in "[^\u{0}]{0,24}") {
        let shell = render(ScriptLanguage::Bash, "printf %s {{ v }}", &value);
        if let Some(out) = run("bash", &["-c"], &shell) {
            prop_assert_eq!(out, value.as_bytes());
        }
        let py = render(ScriptLanguage::Python, "import sys; sys.stdout.buffer.write({{ v }}.encode('utf-8', 'surrogatepass'))", &value);
        if let Some(out) = run("python3", &["-c"], &py) {
            prop_assert_eq!(out, value.as_bytes());
        }
    }

    #[test]
    fn quoted_values_have_no_unquoted_metacharacters(value in "\\PC{0,40}") {
        let shell = render(ScriptLanguage::Bash, "{{ v }}", &value);
        // Outside the single quotes only `\'` (an escaped quote) may appear.
        prop_assert!(only_quoted_text(&shell), "{}", shell);
    }
}
