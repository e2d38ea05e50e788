//! Parameter values merged from their definitions.

use std::collections::BTreeMap;
use std::fmt;

use crate::model::ParamDef;
use crate::{Error, Result};

/// What an encrypted value is shown as in snapshots, API responses and redacted output.
pub const MASK: &str = "******";

/// Longest accepted parameter value, in bytes.
pub const MAX_VALUE_LEN: usize = 64 * 1024;

/// One parameter value after merging.
#[derive(Clone, PartialEq, Eq)]
pub struct ParamValue {
    value: String,
    encrypted: bool,
}

impl ParamValue {
    /// The real value (decrypted, for dispatch only).
    pub fn value(&self) -> &str {
        &self.value
    }

    /// Whether it is a secret.
    pub fn is_encrypted(&self) -> bool {
        self.encrypted
    }

    /// The value as it may be stored or shown: [`MASK`] for a secret.
    pub fn shown(&self) -> &str {
        if self.encrypted { MASK } else { &self.value }
    }
}

impl fmt::Debug for ParamValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ParamValue")
            .field("value", &self.shown())
            .field("encrypted", &self.encrypted)
            .finish()
    }
}

/// The values of a script's parameters, merged from the definitions and the request.
///
/// Its `Debug` output masks secrets, so it can be logged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params {
    values: BTreeMap<String, ParamValue>,
}

impl Params {
    /// Merges `given` values (already decrypted) into `defs`:
    ///
    /// - a name that is not defined is refused (`params.NAME`);
    /// - a missing value takes the default; a required param with neither is refused;
    ///   an optional one is the empty string;
    /// - values must be at most [`MAX_VALUE_LEN`] bytes and contain no NUL;
    /// - definitions are checked with [`ParamDef::validate`] and must have unique names.
    pub fn resolve(defs: &[ParamDef], given: &BTreeMap<String, String>) -> Result<Self> {
        let mut values = BTreeMap::new();
        for (i, def) in defs.iter().enumerate() {
            def.validate(&format!("params[{i}]"))?;
            let field = format!("params.{}", def.name);
            let value = match (given.get(&def.name), &def.default) {
                (Some(v), _) => v.clone(),
                (None, Some(d)) => d.clone(),
                (None, None) if def.is_required => {
                    return Err(Error::invalid(field, "is required"));
                }
                (None, None) => String::new(),
            };
            if def.is_required && value.is_empty() {
                return Err(Error::invalid(field, "is required"));
            }
            check_value(&field, &value)?;
            let merged = ParamValue {
                value,
                encrypted: def.is_encrypted,
            };
            if values.insert(def.name.clone(), merged).is_some() {
                return Err(Error::invalid(
                    format!("params[{i}].name"),
                    format!("`{}` is defined twice", def.name),
                ));
            }
        }
        if let Some(unknown) = given.keys().find(|k| !values.contains_key(*k)) {
            return Err(Error::invalid(
                format!("params.{unknown}"),
                "is not a parameter of this script",
            ));
        }
        Ok(Self { values })
    }

    /// Plain values with no definitions (none secret), such as those of an inline script.
    pub fn plain(given: &BTreeMap<String, String>) -> Result<Self> {
        let mut values = BTreeMap::new();
        for (name, value) in given {
            let def = ParamDef {
                name: name.clone(),
                label: String::new(),
                description: String::new(),
                default: None,
                is_encrypted: false,
                is_required: false,
            };
            def.validate(&format!("params.{name}"))?;
            check_value(&format!("params.{name}"), value)?;
            values.insert(
                name.clone(),
                ParamValue {
                    value: value.clone(),
                    encrypted: false,
                },
            );
        }
        Ok(Self { values })
    }

    /// Each value by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &ParamValue)> {
        self.values.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Whether any value is a secret.
    pub fn has_secrets(&self) -> bool {
        self.values.values().any(|v| v.encrypted)
    }

    /// The secret values, for an [`OutputRedactor`](super::OutputRedactor).
    pub fn secrets(&self) -> Vec<String> {
        self.values
            .values()
            .filter(|v| v.encrypted && !v.value.is_empty())
            .map(|v| v.value.clone())
            .collect()
    }

    /// The values as they may be stored in a snapshot: secrets as [`MASK`].
    pub fn masked(&self) -> BTreeMap<String, String> {
        self.values
            .iter()
            .map(|(k, v)| (k.clone(), v.shown().to_owned()))
            .collect()
    }
}

fn check_value(field: &str, value: &str) -> Result<()> {
    if value.len() > MAX_VALUE_LEN {
        return Err(Error::invalid(
            field,
            format!("must be at most {MAX_VALUE_LEN} bytes"),
        ));
    }
    if value.contains('\0') {
        return Err(Error::invalid(field, "must not contain NUL"));
    }
    Ok(())
}
