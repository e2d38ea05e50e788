use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{ScriptId, ScriptVersionId, TeamId, UserId};
use crate::values::{Description, Name, ScriptContent};
use crate::{Error, Result};

/// The language a script is written in; it decides the interpreter and how template values
/// are escaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScriptLanguage {
    /// A POSIX shell script; runs with bash unless its shebang names another allowed shell.
    Shell,
    /// A bash script.
    Bash,
    /// A Python 3 script.
    Python,
    /// A PowerShell script.
    Powershell,
    /// A Windows batch script.
    Bat,
}

impl ScriptLanguage {
    /// Every language, in wire order.
    pub const ALL: [Self; 5] = [
        Self::Shell,
        Self::Bash,
        Self::Python,
        Self::Powershell,
        Self::Bat,
    ];

    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Shell => "shell",
            Self::Bash => "bash",
            Self::Python => "python",
            Self::Powershell => "powershell",
            Self::Bat => "bat",
        }
    }

    /// Parses a wire name as the field `field`; BlueKing's numeric `script_language`
    /// codes (1 shell, 2 bat, 4 python, 5 powershell) are accepted too.
    pub fn parse(field: &str, value: &str) -> Result<Self> {
        let v = value.trim().to_ascii_lowercase();
        Ok(match v.as_str() {
            "shell" | "sh" | "1" => Self::Shell,
            "bash" => Self::Bash,
            "python" | "python3" | "4" => Self::Python,
            "powershell" | "pwsh" | "5" => Self::Powershell,
            "bat" | "batch" | "2" => Self::Bat,
            _ => {
                return Err(Error::invalid(
                    field,
                    format!(
                        "unknown script type `{value}`; expected one of shell, bash, python, powershell, bat"
                    ),
                ));
            }
        })
    }
}

impl ScriptLanguage {
    /// Parses the wire `script_type` of the open APIs (REST and NATS) as the field `field`:
    /// a language name ([`ScriptLanguage::parse`]) or BlueKing's integer code (1 shell,
    /// 2 bat, 4 python, 5 powershell; 3, perl, is not supported).
    pub fn from_wire(field: &str, value: &serde_json::Value) -> Result<Self> {
        const CODES: &str = "expected shell (1), bat (2), python (4) or powershell (5)";
        match value {
            serde_json::Value::String(s) => Self::parse(field, s),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(3) => Err(Error::invalid(
                    field,
                    format!("3 (perl) is not supported; {CODES}"),
                )),
                Some(code @ (1 | 2 | 4 | 5)) => Self::parse(field, &code.to_string()),
                _ => Err(Error::invalid(field, format!("unknown code {n}; {CODES}"))),
            },
            other => Err(Error::invalid(
                field,
                format!(
                    "expected a language name or an integer code, got {}",
                    match other {
                        serde_json::Value::Null => "null",
                        serde_json::Value::Bool(_) => "a boolean",
                        serde_json::Value::Array(_) => "an array",
                        _ => "an object",
                    }
                ),
            )),
        }
    }
}

impl fmt::Display for ScriptLanguage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The lifecycle of a script version. Only an `online` version can be used by cron jobs
/// and the open APIs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScriptStatus {
    /// Being written; usable only from the console by its team.
    Draft,
    /// Published; usable everywhere.
    Online,
    /// Withdrawn; kept for the record, usable nowhere.
    Offline,
}

/// The definition of one template parameter of a script or playbook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParamDef {
    /// The name used in the template (`{{ name }}`): a valid identifier.
    pub name: String,
    /// A label for people.
    #[serde(default)]
    pub label: String,
    /// A hint shown next to the input.
    #[serde(default)]
    pub description: String,
    /// The value used when the request gives none.
    #[serde(default)]
    pub default: Option<String>,
    /// Encrypted params are decrypted only at dispatch and masked as `******` everywhere else.
    #[serde(default)]
    pub is_encrypted: bool,
    /// A required param without a value and without a default refuses the request.
    #[serde(default)]
    pub is_required: bool,
}

impl ParamDef {
    /// Checks the definition: `name` must be an identifier (`[A-Za-z_][A-Za-z0-9_]{0,63}`)
    /// that is not a template keyword.
    pub fn validate(&self, field: &str) -> Result<()> {
        let b = self.name.as_bytes();
        let ident = !b.is_empty()
            && b.len() <= 64
            && (b[0].is_ascii_alphabetic() || b[0] == b'_')
            && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_');
        if !ident {
            return Err(Error::invalid(
                format!("{field}.name"),
                format!(
                    "`{}` is not an identifier (letters, digits and _, at most 64)",
                    self.name
                ),
            ));
        }
        const RESERVED: [&str; 9] = [
            "true", "false", "none", "and", "or", "not", "in", "is", "loop",
        ];
        if RESERVED.contains(&self.name.to_ascii_lowercase().as_str()) {
            return Err(Error::invalid(
                format!("{field}.name"),
                format!("`{}` is a reserved word", self.name),
            ));
        }
        Ok(())
    }
}

/// A reusable script in the library. Its content lives in [`ScriptVersion`]s.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Script {
    /// Its id.
    pub id: ScriptId,
    /// Owner team.
    pub team_id: TeamId,
    /// Name, unique within the team.
    pub name: Name,
    /// Free text.
    #[serde(default)]
    pub description: Description,
    /// Its language.
    pub language: ScriptLanguage,
    /// Labels for finding it.
    #[serde(default)]
    pub tags: Vec<String>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it was last changed.
    pub updated_at: DateTime<Utc>,
}

/// One immutable version of a script. Editing makes a new version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScriptVersion {
    /// Its id.
    pub id: ScriptVersionId,
    /// The script it belongs to.
    pub script_id: ScriptId,
    /// 1, 2, 3… within the script.
    pub version: u32,
    /// The template text.
    pub content: ScriptContent,
    /// Parameter definitions.
    pub params: Vec<ParamDef>,
    /// Lifecycle status.
    pub status: ScriptStatus,
    /// Who wrote it.
    pub created_by: Option<UserId>,
    /// When it was written.
    pub created_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wire_script_type_takes_names_and_blueking_codes() {
        let wire = |v: serde_json::Value| ScriptLanguage::from_wire("script_type", &v);
        assert_eq!(wire(serde_json::json!(1)).unwrap(), ScriptLanguage::Shell);
        assert_eq!(wire(serde_json::json!(2)).unwrap(), ScriptLanguage::Bat);
        assert_eq!(wire(serde_json::json!(4)).unwrap(), ScriptLanguage::Python);
        assert_eq!(
            wire(serde_json::json!(5)).unwrap(),
            ScriptLanguage::Powershell
        );
        assert_eq!(
            wire(serde_json::json!("Python")).unwrap(),
            ScriptLanguage::Python
        );
        for (value, reason) in [
            (
                serde_json::json!(3),
                "3 (perl) is not supported; expected shell (1), bat (2), python (4) or powershell (5)",
            ),
            (
                serde_json::json!(7),
                "unknown code 7; expected shell (1), bat (2), python (4) or powershell (5)",
            ),
            (
                serde_json::json!(1.5),
                "unknown code 1.5; expected shell (1), bat (2), python (4) or powershell (5)",
            ),
            (
                serde_json::json!(true),
                "expected a language name or an integer code, got a boolean",
            ),
            (
                serde_json::json!("cobol"),
                "unknown script type `cobol`; expected one of shell, bash, python, powershell, bat",
            ),
        ] {
            let err = wire(value.clone()).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("invalid script_type: {reason}"),
                "{value}"
            );
        }
    }

    #[test]
    fn unknown_script_type_names_the_field_and_the_choices() {
        let err = ScriptLanguage::parse("script_type", "cobol").unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with("invalid script_type:") && msg.contains("bash"),
            "{msg}"
        );
        assert_eq!(
            ScriptLanguage::parse("script_type", "1").unwrap(),
            ScriptLanguage::Shell
        );
    }

    #[test]
    fn param_names_must_be_identifiers() {
        let mut p = ParamDef {
            name: "db_host".into(),
            label: String::new(),
            description: String::new(),
            default: None,
            is_encrypted: false,
            is_required: true,
        };
        assert!(p.validate("params[0]").is_ok());
        p.name = "db-host".into();
        assert!(
            p.validate("params[0]")
                .unwrap_err()
                .to_string()
                .contains("params[0].name")
        );
        p.name = "loop".into();
        assert!(p.validate("params[0]").is_err());
    }
}
