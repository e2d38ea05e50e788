//! Where a knob's value comes from and how it is read: the file, parsed as a table and
//! checked against [`KNOBS`], under the `JOBD_*` environment. Every reader parses by the
//! knob's kind and, on a bad value, names the knob and the value's origin.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::{ConfigError, KNOBS, env_var};

/// Parses the file into `knob → value`, refusing keys that are not knobs.
pub(super) fn parse_file(text: &str) -> Result<BTreeMap<String, toml::Value>, ConfigError> {
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| ConfigError(format!("is not valid TOML: {e}")))?;
    let mut flat = BTreeMap::new();
    for (key, value) in table {
        match value {
            toml::Value::Table(section) => {
                if !KNOBS.iter().any(|k| k.starts_with(&format!("{key}."))) {
                    return Err(unknown_key(&key));
                }
                for (inner, value) in section {
                    let knob = format!("{key}.{inner}");
                    if !KNOBS.contains(&knob.as_str()) {
                        return Err(unknown_key(&knob));
                    }
                    flat.insert(knob, value);
                }
            }
            value => {
                if !KNOBS.contains(&key.as_str()) {
                    return Err(unknown_key(&key));
                }
                flat.insert(key, value);
            }
        }
    }
    Ok(flat)
}

fn unknown_key(key: &str) -> ConfigError {
    ConfigError(format!(
        "unknown key `{key}` (see docs/configuration.md for the knobs)"
    ))
}

/// Where values come from: the file, then the environment over it.
pub(super) struct Sources<'a> {
    pub(super) file: BTreeMap<String, toml::Value>,
    pub(super) env: &'a dyn Fn(&str) -> Option<String>,
}

/// One knob's value as given, with where it came from.
pub(super) struct Raw {
    knob: String,
    origin: String,
    value: RawValue,
}

pub(super) enum RawValue {
    Env(String),
    File(toml::Value),
}

impl Sources<'_> {
    pub(super) fn get(&self, knob: &str) -> Option<Raw> {
        let var = env_var(knob);
        if let Some(text) = (self.env)(&var) {
            return Some(Raw {
                knob: knob.to_owned(),
                origin: var,
                value: RawValue::Env(text),
            });
        }
        self.file.get(knob).map(|v| Raw {
            knob: knob.to_owned(),
            origin: "the config file".to_owned(),
            value: RawValue::File(v.clone()),
        })
    }

    /// A variable outside the `JOBD_*` scheme (`RUST_LOG`), read as the knob `log`.
    pub(super) fn env_raw(&self, var: &str) -> Option<Raw> {
        (self.env)(var).map(|text| Raw {
            knob: "log".to_owned(),
            origin: var.to_owned(),
            value: RawValue::Env(text),
        })
    }

    pub(super) fn path(&self, knob: &str) -> Result<Option<PathBuf>, ConfigError> {
        self.get(knob)
            .map(|raw| {
                let text = raw.string()?;
                if text.is_empty() {
                    return Err(raw.refuse("a path"));
                }
                Ok(PathBuf::from(text))
            })
            .transpose()
    }

    pub(super) fn bool(&self, knob: &str) -> Result<Option<bool>, ConfigError> {
        self.get(knob)
            .map(|raw| match &raw.value {
                RawValue::File(toml::Value::Boolean(b)) => Ok(*b),
                RawValue::Env(text) => match text.trim().to_ascii_lowercase().as_str() {
                    "true" | "1" | "yes" | "on" => Ok(true),
                    "false" | "0" | "no" | "off" => Ok(false),
                    _ => Err(raw.refuse("true or false")),
                },
                RawValue::File(_) => Err(raw.refuse("true or false")),
            })
            .transpose()
    }

    pub(super) fn number(&self, knob: &str, min: u64) -> Result<Option<u64>, ConfigError> {
        self.get(knob)
            .map(|raw| {
                let n = match &raw.value {
                    RawValue::File(toml::Value::Integer(i)) => u64::try_from(*i).ok(),
                    RawValue::Env(text) => text.trim().parse::<u64>().ok(),
                    RawValue::File(_) => None,
                };
                match n {
                    Some(n) if n >= min => Ok(n),
                    _ => Err(raw.refuse(&format!("a whole number of at least {min}"))),
                }
            })
            .transpose()
    }

    pub(super) fn count(&self, knob: &str) -> Result<Option<usize>, ConfigError> {
        self.number(knob, 1)?
            .map(|n| {
                usize::try_from(n).map_err(|_| {
                    ConfigError(format!("invalid {knob}: {n} is too large for this machine"))
                })
            })
            .transpose()
    }

    pub(super) fn secs(&self, knob: &str, min: u64) -> Result<Option<u64>, ConfigError> {
        // A year is far beyond any sensible grace or timeout; bigger is surely a typo.
        const MAX: u64 = 365 * 24 * 3600;
        match self.number(knob, min)? {
            Some(n) if n > MAX => Err(ConfigError(format!(
                "invalid {knob}: {n} seconds is more than a year"
            ))),
            other => Ok(other),
        }
    }

    pub(super) fn list(&self, knob: &str) -> Result<Option<Vec<String>>, ConfigError> {
        self.get(knob)
            .map(|raw| match &raw.value {
                RawValue::Env(text) => Ok(text
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()),
                RawValue::File(toml::Value::Array(items)) => items
                    .iter()
                    .map(|v| match v {
                        toml::Value::String(s) => Ok(s.clone()),
                        _ => Err(raw.refuse("a list of strings")),
                    })
                    .collect(),
                RawValue::File(_) => Err(raw.refuse("a list of strings")),
            })
            .transpose()
    }
}

impl Raw {
    pub(super) fn string(&self) -> Result<String, ConfigError> {
        match &self.value {
            RawValue::Env(text) => Ok(text.clone()),
            RawValue::File(toml::Value::String(s)) => Ok(s.clone()),
            RawValue::File(_) => Err(self.refuse("a string")),
        }
    }

    pub(super) fn parse_with<T>(
        &self,
        expected: &str,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Result<T, ConfigError> {
        let text = self.string()?;
        parse(text.trim()).ok_or_else(|| self.refuse(expected))
    }

    /// An error naming the knob, where its value came from, what was expected and the value.
    pub(super) fn refuse(&self, expected: &str) -> ConfigError {
        let shown = match &self.value {
            RawValue::Env(text) => format!("{text:?}"),
            RawValue::File(toml::Value::String(s)) => format!("{s:?}"),
            RawValue::File(toml::Value::Integer(i)) => i.to_string(),
            RawValue::File(toml::Value::Float(f)) => f.to_string(),
            RawValue::File(toml::Value::Boolean(b)) => b.to_string(),
            RawValue::File(other) => format!("a {}", other.type_str()),
        };
        ConfigError(format!(
            "invalid {} (from {}): expected {expected}, got {shown}",
            self.knob, self.origin
        ))
    }

    /// Like [`Raw::refuse`] without echoing the value (it may hold a password).
    pub(super) fn refuse_quietly(&self, expected: &str) -> ConfigError {
        ConfigError(format!(
            "invalid {} (from {}): expected {expected}",
            self.knob, self.origin
        ))
    }
}
