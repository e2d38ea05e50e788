//! Script templating with minijinja; see docs/templating.md.
//!
//! Scripts use Jinja2 syntax (`{{ param }}`, `{% if %}`, `{% for %}`, filters). Rendering is
//! strict and bounded:
//!
//! - **strict undefined**: a name that is not a parameter is an error naming it;
//! - **fuel**: a render may do at most [`FUEL`] units of work, so a template cannot loop
//!   or allocate without bound;
//! - **auto-escaping per language**: every printed value becomes one literal of the script's
//!   language ([`escape`]): POSIX single quotes for shell and bash, string literals for
//!   Python and PowerShell, a quoted argument for batch files. Numbers print bare. `|safe`
//!   (or an `{% autoescape false %}` block) is the explicit opt-out, for when the template
//!   author wants a value inserted as code;
//! - **secrets**: encrypted parameter values are rendered into the script that is
//!   dispatched, but the snapshot that is stored is rendered with [`MASK`] in their place,
//!   and [`OutputRedactor`] masks them in streamed output.
//!
//! ```
//! use std::collections::BTreeMap;
//! use job_core::model::{ParamDef, ScriptLanguage};
//! use job_core::template::{Params, render_script};
//!
//! let defs = vec![ParamDef {
//!     name: "greeting".into(),
//!     label: String::new(),
//!     description: String::new(),
//!     default: Some("hello".into()),
//!     is_encrypted: false,
//!     is_required: false,
//! }];
//! let given = BTreeMap::from([("greeting".to_owned(), "it's; rm -rf /".to_owned())]);
//! let params = Params::resolve(&defs, &given)?;
//! let out = render_script(ScriptLanguage::Bash, "echo {{ greeting }}\n", &params)?;
//! assert_eq!(out.script(), "echo 'it'\\''s; rm -rf /'\n");
//! # Ok::<(), job_core::Error>(())
//! ```

pub mod escape;
mod params;
mod redact;

use std::collections::BTreeMap;
use std::fmt;

use minijinja::syntax::SyntaxConfig;
use minijinja::value::{Value, ValueKind};
use minijinja::{AutoEscape, Environment, ErrorKind, UndefinedBehavior};

pub use params::{MASK, MAX_VALUE_LEN, ParamValue, Params};
pub use redact::{MIN_SECRET_LEN, OutputRedactor};

use crate::model::ScriptLanguage;
use crate::{Error, Result};

/// The work one render may do (minijinja fuel: about one unit per instruction and per 64
/// bytes of data). Enough for a 1 MiB script with loops; a runaway template fails instead.
pub const FUEL: u64 = 2_000_000;

/// A rendered script: the text to dispatch and the text to store.
#[derive(Clone)]
pub struct RenderedScript {
    script: String,
    snapshot: String,
    params: BTreeMap<String, String>,
    secrets: Vec<String>,
}

impl RenderedScript {
    /// The script to run on the targets, with secrets in clear. Never store or log it.
    pub fn script(&self) -> &str {
        &self.script
    }

    /// The script as it may be stored and shown: rendered with every secret as [`MASK`].
    pub fn snapshot(&self) -> &str {
        &self.snapshot
    }

    /// The parameter values as they may be stored: secrets as [`MASK`].
    pub fn masked_params(&self) -> &BTreeMap<String, String> {
        &self.params
    }

    /// A redactor for the output of this script (one per stream).
    pub fn redactor(&self) -> OutputRedactor {
        OutputRedactor::new(&self.secrets)
    }
}

impl fmt::Debug for RenderedScript {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RenderedScript")
            .field("snapshot", &self.snapshot)
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

fn escape_name(language: ScriptLanguage) -> &'static str {
    language.as_str()
}

fn language_of(name: &str) -> Option<ScriptLanguage> {
    ScriptLanguage::ALL
        .into_iter()
        .find(|l| escape_name(*l) == name)
}

fn write_value(
    out: &mut minijinja::Output<'_>,
    state: &mut minijinja::State<'_, '_>,
    value: &Value,
) -> std::result::Result<(), minijinja::Error> {
    let language = match state.auto_escape() {
        AutoEscape::Custom(name) => language_of(name),
        _ => None,
    };
    let text = match (language, value.kind()) {
        _ if value.is_safe() => value.to_string(),
        (None, _) => return minijinja::escape_formatter(out, state, value),
        (Some(_), ValueKind::Number) => value.to_string(),
        (Some(_), ValueKind::Undefined) => {
            return Err(minijinja::Error::new(
                ErrorKind::UndefinedError,
                "an undefined value cannot be printed",
            ));
        }
        (Some(language), ValueKind::None) => escape::quote(language, "")
            .map_err(|e| minijinja::Error::new(ErrorKind::InvalidOperation, e))?,
        (Some(language), _) => {
            let raw = match value.as_str() {
                Some(s) => escape::quote(language, s),
                None => escape::quote(language, &value.to_string()),
            };
            raw.map_err(|e| minijinja::Error::new(ErrorKind::InvalidOperation, e))?
        }
    };
    out.write_str(&text).map_err(minijinja::Error::from)
}

fn environment(language: ScriptLanguage) -> Result<Environment<'static>> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_fuel(Some(FUEL));
    env.set_debug(true);
    let syntax = SyntaxConfig::builder()
        .keep_trailing_newline(true)
        .build()
        .map_err(|e| Error::invalid("script_content", e.to_string()))?;
    env.set_syntax(syntax);
    let name = escape_name(language);
    env.set_auto_escape_callback(move |_| AutoEscape::Custom(name.into()));
    env.set_formatter(write_value);
    Ok(env)
}

/// Turns a minijinja error into [`Error::Invalid`]: `params` for an undefined name,
/// `script_content` for everything else (syntax, fuel, a value that cannot be quoted).
fn template_error(e: &minijinja::Error) -> Error {
    let kind = e.kind().to_string();
    let detail = e.detail().unwrap_or(&kind);
    let line = e.line().map(|l| format!(" (line {l})")).unwrap_or_default();
    match e.kind() {
        ErrorKind::UndefinedError => Error::invalid("params", format!("{detail}{line}")),
        ErrorKind::OutOfFuel => Error::invalid(
            "script_content",
            format!("the template does too much work (fuel limit {FUEL} reached){line}"),
        ),
        kind => Error::invalid("script_content", format!("{kind}: {detail}{line}")),
    }
}

fn context(params: &Params, masked: bool) -> Value {
    let map: BTreeMap<String, Value> = params
        .iter()
        .map(|(k, v)| {
            let shown = if masked { v.shown() } else { v.value() };
            (k.to_owned(), Value::from(shown))
        })
        .collect();
    Value::from(map)
}

/// Renders `source` for `language` with `params`; see the [module documentation](self).
///
/// Errors are [`Error::Invalid`]: `params` for a name the template uses but no parameter
/// defines, `script_content` for a syntax error, exhausted fuel or a value the language
/// cannot quote.
pub fn render_script(
    language: ScriptLanguage,
    source: &str,
    params: &Params,
) -> Result<RenderedScript> {
    let env = environment(language)?;
    let template = env
        .template_from_named_str("script", source)
        .map_err(|e| template_error(&e))?;
    let script = template
        .render(context(params, false))
        .map_err(|e| template_error(&e))?;
    let snapshot = if params.has_secrets() {
        template
            .render(context(params, true))
            .map_err(|e| template_error(&e))?
    } else {
        script.clone()
    };
    Ok(RenderedScript {
        script,
        snapshot,
        params: params.masked(),
        secrets: params.secrets(),
    })
}

/// Checks that `source` parses as a template, naming the line of a syntax error; used when
/// a script version is saved.
pub fn validate_template(source: &str) -> Result<()> {
    let env = environment(ScriptLanguage::Shell)?;
    env.template_from_named_str("script", source)
        .map(|_| ())
        .map_err(|e| template_error(&e))
}
