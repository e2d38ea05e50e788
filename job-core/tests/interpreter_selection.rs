//! Interpreter selection by language and shebang, and line-end normalization.

use job_core::Error;
use job_core::interpreter::{Interpreter, prepare, select};
use job_core::model::ScriptLanguage;

#[test]
fn shell_scripts_run_with_bash_by_default() {
    let p = prepare(ScriptLanguage::Shell, "echo hi\n").unwrap();
    assert_eq!(p.interpreter, Interpreter::Bash);
    assert!(p.args.is_empty());
    assert_eq!(
        select(ScriptLanguage::Python, "print(1)").unwrap(),
        Interpreter::Python3
    );
    assert_eq!(
        select(ScriptLanguage::Powershell, "Get-Date").unwrap(),
        Interpreter::Powershell
    );
    assert_eq!(
        select(ScriptLanguage::Bat, "echo hi").unwrap(),
        Interpreter::Cmd
    );
}

#[test]
fn a_shebang_chooses_among_the_allowed_interpreters_by_path_or_env() {
    let cases = [
        (ScriptLanguage::Shell, "#!/bin/sh", Interpreter::Sh),
        (ScriptLanguage::Shell, "#!/bin/bash", Interpreter::Bash),
        (
            ScriptLanguage::Bash,
            "#! /usr/bin/env bash",
            Interpreter::Bash,
        ),
        (
            ScriptLanguage::Shell,
            "#!/usr/bin/env -S sh",
            Interpreter::Sh,
        ),
        (
            ScriptLanguage::Python,
            "#!/usr/bin/python",
            Interpreter::Python,
        ),
        (
            ScriptLanguage::Python,
            "#!/usr/bin/env python3",
            Interpreter::Python3,
        ),
        (
            ScriptLanguage::Powershell,
            "#!/usr/bin/env pwsh",
            Interpreter::Pwsh,
        ),
        (
            ScriptLanguage::Powershell,
            "#!/opt/microsoft/powershell",
            Interpreter::Powershell,
        ),
    ];
    for (language, line, expected) in cases {
        let script = format!("{line}\necho\n");
        assert_eq!(select(language, &script).unwrap(), expected, "{line}");
    }
}

#[test]
fn shebang_options_are_kept_as_arguments() {
    let p = prepare(ScriptLanguage::Bash, "#!/bin/bash -eu\nfalse\n").unwrap();
    assert_eq!(p.args, ["-eu"]);
    let p = prepare(
        ScriptLanguage::Bash,
        "#!/usr/bin/env -S bash -e -o pipefail\n",
    )
    .unwrap_err();
    assert!(p.to_string().contains("pipefail"), "{p}");
}

#[test]
fn other_shebangs_are_refused_with_a_clear_error() {
    for (language, script, needle) in [
        (ScriptLanguage::Shell, "#!/usr/bin/perl\nprint 1", "`perl`"),
        (ScriptLanguage::Shell, "#!/usr/bin/env node\n", "`node`"),
        (ScriptLanguage::Shell, "#!/bin/zsh\n", "`zsh`"),
        (ScriptLanguage::Shell, "#!\n", "no interpreter"),
        (ScriptLanguage::Shell, "#!/usr/bin/env\n", "no interpreter"),
        (
            ScriptLanguage::Shell,
            "#!/usr/bin/env -i bash\n",
            "env options",
        ),
        (
            ScriptLanguage::Shell,
            "#!/bin/bash /tmp/other.sh\n",
            "/tmp/other.sh",
        ),
        (
            ScriptLanguage::Python,
            "#!/bin/bash\n",
            "does not run python",
        ),
        (
            ScriptLanguage::Shell,
            "#!/usr/bin/env python3\n",
            "does not run shell",
        ),
        (ScriptLanguage::Bat, "#!/bin/sh\n", "batch"),
    ] {
        match prepare(language, script) {
            Err(Error::Invalid { field, reason }) => {
                assert_eq!(field, "script_content");
                assert!(reason.contains(needle), "{script:?}: {reason}");
            }
            other => panic!("{script:?}: expected Invalid, got {other:?}"),
        }
    }
    let err = prepare(ScriptLanguage::Shell, "#!/usr/bin/perl\n").unwrap_err();
    assert!(
        err.to_string()
            .contains("sh, bash, python, python3, powershell, pwsh")
    );
}

#[test]
fn crlf_is_normalized_for_non_windows_languages_only() {
    let crlf = "#!/bin/sh\r\necho a\r\necho b\r\n";
    for language in [ScriptLanguage::Shell, ScriptLanguage::Bash] {
        let p = prepare(language, crlf).unwrap();
        assert_eq!(p.content, "#!/bin/sh\necho a\necho b\n");
        assert_eq!(p.interpreter, Interpreter::Sh);
    }
    let p = prepare(ScriptLanguage::Python, "\u{feff}print(1)\r\n").unwrap();
    assert_eq!(p.content, "print(1)\n");
    // found by fuzzing: a doubled carriage return must not leave a CRLF behind
    let p = prepare(ScriptLanguage::Shell, "\r\r\n\n\na\rb\r").unwrap();
    assert_eq!(p.content, "\n\n\na\rb\r");
    for language in [ScriptLanguage::Powershell, ScriptLanguage::Bat] {
        assert_eq!(
            prepare(language, "a\r\nb\r\n").unwrap().content,
            "a\r\nb\r\n"
        );
    }
}

#[test]
fn a_shebang_only_counts_on_the_first_line() {
    let p = prepare(ScriptLanguage::Shell, "echo hi\n#!/usr/bin/perl\n").unwrap();
    assert_eq!(p.interpreter, Interpreter::Bash);
}
