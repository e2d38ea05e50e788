//! Rendering: strict undefined, fuel, parameter merging, secrets and per-language quoting.

use std::collections::BTreeMap;

use job_core::Error;
use job_core::model::{ParamDef, ScriptLanguage};
use job_core::template::{MASK, Params, render_script, validate_template};

fn def(name: &str, default: Option<&str>, encrypted: bool, required: bool) -> ParamDef {
    ParamDef {
        name: name.to_owned(),
        label: String::new(),
        description: String::new(),
        default: default.map(str::to_owned),
        is_encrypted: encrypted,
        is_required: required,
    }
}

fn given(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn invalid(e: Error) -> (String, String) {
    match e {
        Error::Invalid { field, reason } => (field, reason),
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn a_typo_in_a_parameter_name_is_an_error_naming_the_variable() {
    let params =
        Params::resolve(&[def("host", None, false, true)], &given(&[("host", "db")])).unwrap();
    let err = render_script(ScriptLanguage::Bash, "ping {{ hots }}", &params).unwrap_err();
    let (field, reason) = invalid(err);
    assert_eq!(field, "params");
    assert!(reason.contains("hots"), "{reason}");
    let err =
        render_script(ScriptLanguage::Bash, "{% if hots %}x{% endif %}", &params).unwrap_err();
    assert!(invalid(err).1.contains("hots"));
}

#[test]
fn a_runaway_template_runs_out_of_fuel() {
    let params = Params::default();
    let err = render_script(
        ScriptLanguage::Bash,
        "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}",
        &params,
    )
    .unwrap_err();
    let (field, reason) = invalid(err);
    assert_eq!(field, "script_content");
    assert!(reason.contains("fuel"), "{reason}");
}

#[test]
fn syntax_errors_name_the_line() {
    let (field, reason) = invalid(validate_template("echo ok\necho {{ broken ").unwrap_err());
    assert_eq!(field, "script_content");
    assert!(reason.contains("line 2"), "{reason}");
    assert!(validate_template("echo {{ ok }}").is_ok());
}

#[test]
fn params_merge_defaults_required_and_unknown_names() {
    let defs = [
        def("a", Some("from-default"), false, false),
        def("b", None, false, true),
        def("c", None, false, false),
    ];
    let p = Params::resolve(&defs, &given(&[("b", "given")])).unwrap();
    let out = render_script(ScriptLanguage::Bash, "{{ a }} {{ b }} {{ c }}", &p).unwrap();
    assert_eq!(out.script(), "'from-default' 'given' ''");

    let (field, reason) = invalid(Params::resolve(&defs, &given(&[])).unwrap_err());
    assert_eq!(
        (field.as_str(), reason.as_str()),
        ("params.b", "is required")
    );
    let (field, _) =
        invalid(Params::resolve(&defs, &given(&[("b", "x"), ("zz", "y")])).unwrap_err());
    assert_eq!(field, "params.zz");
    assert!(Params::resolve(&defs, &given(&[("b", "a\0b")])).is_err());
}

#[test]
fn encrypted_values_are_dispatched_but_never_in_the_snapshot() {
    let defs = [
        def("password", None, true, true),
        def("user", Some("app"), false, false),
    ];
    let p = Params::resolve(&defs, &given(&[("password", "s3cr3t-pw")])).unwrap();
    let source = "login {{ user }} {{ password }}\necho {{ password|upper }} {{ password|safe }}\n{{ debug() }}";
    let out = render_script(ScriptLanguage::Bash, source, &p).unwrap();
    assert!(out.script().contains("'s3cr3t-pw'"));
    assert!(!out.snapshot().contains("s3cr3t"), "{}", out.snapshot());
    assert!(out.snapshot().contains(&format!("'{MASK}'")));
    assert_eq!(out.masked_params()["password"], MASK);
    assert_eq!(out.masked_params()["user"], "app");
    assert!(!format!("{out:?}").contains("s3cr3t"));
    assert!(!format!("{p:?}").contains("s3cr3t"));
}

#[test]
fn the_output_redactor_masks_secrets_split_across_chunks() {
    let p = Params::resolve(
        &[def("token", None, true, true)],
        &given(&[("token", "tok-123456")]),
    )
    .unwrap();
    let out = render_script(ScriptLanguage::Shell, "echo {{ token }}", &p).unwrap();
    let mut r = out.redactor();
    let mut shown = r.push(b"token is tok-12");
    shown.extend(r.push(b"3456 and again tok-123456\n"));
    shown.extend(r.finish());
    assert_eq!(
        String::from_utf8(shown).unwrap(),
        format!("token is {MASK} and again {MASK}\n")
    );
}

#[test]
fn each_language_gets_its_own_literal_and_numbers_print_bare() {
    let p = Params::plain(&given(&[("v", "it's \"x\" $HOME")])).unwrap();
    let cases = [
        (ScriptLanguage::Shell, r#"'it'\''s "x" $HOME'"#),
        (ScriptLanguage::Bash, r#"'it'\''s "x" $HOME'"#),
        (ScriptLanguage::Python, r#""it's \"x\" $HOME""#),
        (ScriptLanguage::Powershell, r#"'it''s "x" $HOME'"#),
    ];
    for (language, expected) in cases {
        assert_eq!(
            render_script(language, "{{ v }}", &p).unwrap().script(),
            expected,
            "{language}"
        );
    }
    assert!(render_script(ScriptLanguage::Bat, "{{ v }}", &p).is_err());
    let n = render_script(ScriptLanguage::Bash, "{{ 40 + 2 }} {{ v|length }}", &p).unwrap();
    assert_eq!(n.script(), "42 14");
}

#[test]
fn trailing_newlines_and_template_logic_are_kept() {
    let p = Params::plain(&given(&[("hosts", "a b")])).unwrap();
    let src = "{% for h in hosts|split %}ping -c1 {{ h }}\n{% endfor %}";
    let out = render_script(ScriptLanguage::Bash, src, &p).unwrap();
    assert_eq!(out.script(), "ping -c1 'a'\nping -c1 'b'\n");
}

mod arbitrary_input {
    //! The fuzz target's invariants, run briefly in the test suite.
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        #[test]
        fn any_template_renders_or_is_refused_without_panicking(
            source in "(\\PC|\\{\\{|\\}\\}|\\{%|%\\}| v | for | in | if | endfor | endif |\\|safe){0,30}",
            value in "\\PC{0,16}",
        ) {
            let p = Params::plain(&given(&[("v", value.as_str())])).unwrap();
            for language in ScriptLanguage::ALL {
                let _ = render_script(language, &source, &p);
            }
        }
    }
}
