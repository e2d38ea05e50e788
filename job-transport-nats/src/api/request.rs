//! Reading a request: the JSON body (plain object or `{"args":[{...}],"kwargs":{}}`
//! envelope), its fields one by one with errors that name them, and the caller's team.

use job_core::Error;
use job_core::ids::TeamId;
use job_core::model::{Actor, Team};
use job_core::store::{Store, TeamScope};
use serde_json::{Map, Value};

/// The longest `operator` accepted, in characters.
const MAX_OPERATOR_CHARS: usize = 128;

/// The fields of one request, taken out one by one; whatever is left at the end is an
/// unknown field.
#[derive(Debug)]
pub(crate) struct Fields {
    map: Map<String, Value>,
}

impl Fields {
    /// Parses a request body: a JSON object, or the envelope `{"args":[{...}],"kwargs":{}}`
    /// whose first argument is merged with `kwargs` (a key in both takes the `kwargs` value).
    pub(crate) fn parse(payload: &[u8]) -> Result<Self, Error> {
        let value: Value = serde_json::from_slice(payload).map_err(|e| {
            Error::invalid(
                "request",
                format!("the body is not valid JSON ({e}); expected a JSON object"),
            )
        })?;
        let Value::Object(map) = value else {
            return Err(Error::invalid(
                "request",
                "expected a JSON object or the envelope {\"args\":[{...}],\"kwargs\":{}}",
            ));
        };
        let is_envelope = !map.is_empty()
            && map.keys().all(|k| k == "args" || k == "kwargs")
            && (map.get("args").is_none_or(Value::is_array)
                && map.get("kwargs").is_none_or(Value::is_object));
        if !is_envelope {
            return Ok(Self { map });
        }
        let mut map = map;
        let mut merged = match map.remove("args") {
            Some(Value::Array(args)) => match args.into_iter().next() {
                None => Map::new(),
                Some(Value::Object(first)) => first,
                Some(_) => {
                    return Err(Error::invalid(
                        "args[0]",
                        "the first argument must be a JSON object of the request's fields",
                    ));
                }
            },
            _ => Map::new(),
        };
        if let Some(Value::Object(kwargs)) = map.remove("kwargs") {
            merged.extend(kwargs);
        }
        Ok(Self { map: merged })
    }

    /// Takes `name`, whatever its type; JSON `null` counts as absent.
    pub(crate) fn take(&mut self, name: &str) -> Option<Value> {
        self.map.remove(name).filter(|v| !v.is_null())
    }

    /// Takes the required text field `name`.
    pub(crate) fn text(&mut self, name: &str) -> Result<String, Error> {
        self.optional_text(name)?
            .ok_or_else(|| Error::invalid(name, "this field is required"))
    }

    /// Takes the optional text field `name`.
    pub(crate) fn optional_text(&mut self, name: &str) -> Result<Option<String>, Error> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(Error::invalid(
                name,
                format!("expected a string, got {}", kind(&other)),
            )),
        }
    }

    /// Takes the optional integer field `name` (a JSON integer, or a string holding one).
    pub(crate) fn optional_integer(&mut self, name: &str) -> Result<Option<i64>, Error> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::Number(n)) => n
                .as_i64()
                .map(Some)
                .ok_or_else(|| Error::invalid(name, format!("expected an integer, got {n}"))),
            Some(Value::String(s)) => s.trim().parse().map(Some).map_err(|_| {
                Error::invalid(name, format!("expected an integer, got the text `{s}`"))
            }),
            Some(other) => Err(Error::invalid(
                name,
                format!("expected an integer, got {}", kind(&other)),
            )),
        }
    }

    /// Takes the optional boolean field `name` (absent is `false`).
    pub(crate) fn flag(&mut self, name: &str) -> Result<bool, Error> {
        match self.take(name) {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(b),
            Some(other) => Err(Error::invalid(
                name,
                format!("expected true or false, got {}", kind(&other)),
            )),
        }
    }

    /// Refuses any field not taken yet, naming the first of them.
    pub(crate) fn finish(self) -> Result<(), Error> {
        match self.map.keys().next() {
            None => Ok(()),
            Some(field) => Err(Error::invalid(
                field.as_str(),
                "unknown field for this method",
            )),
        }
    }
}

/// The JSON type of `value`, for error messages.
pub(crate) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Who is asking: the team every request names, and the actor it acts as.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    /// The team the request is scoped to.
    pub(crate) team: TeamId,
    /// `Actor::nats(team, operator)`.
    pub(crate) actor: Actor,
}

impl Caller {
    /// Reads `team` (by name) or `team_id`, and the optional `operator`, from `fields`.
    ///
    /// A team that does not exist is refused naming the field it came from; when both are
    /// given they must name the same team.
    pub(crate) async fn take(fields: &mut Fields, store: &dyn Store) -> Result<Self, Error> {
        let by_name = fields.optional_text("team")?;
        let by_id = fields.optional_text("team_id")?;
        let operator = fields.optional_text("operator")?;
        let team = match (by_name, by_id) {
            (None, None) => {
                return Err(Error::invalid(
                    "team",
                    "this field is required: every request names its team (`team` by name or `team_id`)",
                ));
            }
            (name, Some(id)) => {
                let team = team_by_id(store, &id).await?;
                if let Some(name) = name
                    && name.trim() != team.name.as_str()
                {
                    return Err(Error::invalid(
                        "team",
                        "names another team than `team_id`; give one of them",
                    ));
                }
                team
            }
            (Some(name), None) => team_by_name(store, &name).await?,
        };
        let caller = match operator.map(|o| o.trim().to_owned()) {
            None => None,
            Some(o) if o.is_empty() => None,
            Some(o)
                if o.chars().count() > MAX_OPERATOR_CHARS || o.chars().any(char::is_control) =>
            {
                return Err(Error::invalid(
                    "operator",
                    format!(
                        "must be at most {MAX_OPERATOR_CHARS} characters without control characters"
                    ),
                ));
            }
            Some(o) => Some(o),
        };
        Ok(Self {
            team: team.id,
            actor: Actor::nats(team.id, caller),
        })
    }

    /// The scope of the caller's team: nothing of another team is visible through it.
    pub(crate) fn scope(&self) -> TeamScope {
        TeamScope::team(self.team)
    }
}

async fn team_by_id(store: &dyn Store, id: &str) -> Result<Team, Error> {
    let id = TeamId::parse_field("team_id", id)?;
    match store.get_team(&TeamScope::All, id).await {
        Ok(team) => Ok(team),
        Err(Error::NotFound { .. }) => Err(Error::invalid("team_id", format!("no team {id}"))),
        Err(e) => Err(e),
    }
}

async fn team_by_name(store: &dyn Store, name: &str) -> Result<Team, Error> {
    let name = name.trim();
    store
        .list_teams(&TeamScope::All)
        .await?
        .into_iter()
        .find(|t| t.name.as_str() == name)
        .ok_or_else(|| Error::invalid("team", format!("no team named `{name}`")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_object_is_read_as_the_fields() {
        let mut f = Fields::parse(br#"{"team":"ops","timeout":"30"}"#).unwrap();
        assert_eq!(f.text("team").unwrap(), "ops");
        assert_eq!(f.optional_integer("timeout").unwrap(), Some(30));
        f.finish().unwrap();
    }

    #[test]
    fn the_envelope_merges_the_first_argument_with_kwargs() {
        let mut f = Fields::parse(br#"{"args":[{"team":"ops","name":"a"}],"kwargs":{"name":"b"}}"#)
            .unwrap();
        assert_eq!(f.text("team").unwrap(), "ops");
        assert_eq!(f.text("name").unwrap(), "b");
        f.finish().unwrap();
    }

    #[test]
    fn a_body_that_is_not_json_names_the_request() {
        let err = Fields::parse(b"not json").unwrap_err();
        assert!(err.to_string().starts_with("invalid request:"), "{err}");
    }

    #[test]
    fn an_unknown_field_is_named() {
        let f = Fields::parse(br#"{"colour":"red"}"#).unwrap();
        let err = f.finish().unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid colour: unknown field for this method"
        );
    }

    #[test]
    fn a_field_of_the_wrong_type_names_the_field_and_the_type() {
        let mut f = Fields::parse(br#"{"confirm":"yes"}"#).unwrap();
        let err = f.flag("confirm").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid confirm: expected true or false, got a string"
        );
    }
}
