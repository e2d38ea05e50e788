//! The schema's migrations, each written once as SQL with dialect tokens and rendered per
//! backend into a [`Migrator`] at start-up.
//!
//! A token is `{{name}}` or `{{name argument}}`; each backend's dialect says what it renders
//! to (`{{uuid}}` is `BLOB` on SQLite, `UUID` on PostgreSQL, …). The rendered text of
//! 0001 and 0002 is byte for byte the text of the per-database files they replace, so
//! databases that already ran them keep matching checksums (the dialects' tests hold the
//! recorded SHA-384 sums).

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;

use job_core::{Error, Result};
use sqlx::error::BoxDynError;
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};

/// The migrations: version, description (as sqlx derives it from a file name) and source.
const SOURCES: &[(i64, &str, &str)] = &[
    (1, "initial", include_str!("../migrations/0001_initial.sql")),
    (2, "rolling", include_str!("../migrations/0002_rolling.sql")),
];

/// What a dialect renders token `name` (with its optional argument) to; `None` for a token
/// it does not know.
pub(crate) type Tokens = fn(name: &str, argument: Option<&str>) -> Option<String>;

/// Renders one migration source with `tokens`.
pub(crate) fn render(source: &str, tokens: Tokens) -> Result<String> {
    let mut out = String::with_capacity(source.len());
    let mut rest = source;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            return Err(Error::invalid("migration", "a `{{` token is never closed"));
        };
        let token = &after[..end];
        let (name, argument) = match token.split_once(' ') {
            Some((n, a)) => (n, Some(a)),
            None => (token, None),
        };
        let Some(text) = tokens(name, argument) else {
            return Err(Error::invalid(
                "migration",
                format!("the dialect has no token `{token}`"),
            ));
        };
        out.push_str(&text);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Every migration rendered with `tokens`.
pub(crate) fn rendered(tokens: Tokens) -> Result<Vec<Migration>> {
    SOURCES
        .iter()
        .map(|(version, description, source)| {
            Ok(Migration::new(
                *version,
                Cow::Borrowed(*description),
                MigrationType::Simple,
                Cow::Owned(render(source, tokens)?),
                false,
            ))
        })
        .collect()
}

/// A [`MigrationSource`] of migrations already rendered.
#[derive(Debug)]
struct Rendered(Vec<Migration>);

impl<'s> MigrationSource<'s> for Rendered {
    fn resolve(
        self,
    ) -> Pin<Box<dyn Future<Output = std::result::Result<Vec<Migration>, BoxDynError>> + Send + 's>>
    {
        Box::pin(async move { Ok(self.0) })
    }
}

/// The migrator of a backend whose dialect renders `tokens`.
pub(crate) async fn migrator(tokens: Tokens) -> Result<Migrator> {
    Migrator::new(Rendered(rendered(tokens)?))
        .await
        .map_err(|e| Error::unavailable("cannot prepare the schema migrations", e))
}

/// The hexadecimal SHA-384 checksum of each migration rendered with `tokens`, by version.
#[cfg(test)]
pub(crate) fn checksums(tokens: Tokens) -> Vec<(i64, String)> {
    rendered(tokens)
        .unwrap_or_default()
        .iter()
        .map(|m| {
            let hex = m.checksum.iter().map(|b| format!("{b:02x}")).collect();
            (m.version, hex)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::render;

    fn tokens(name: &str, argument: Option<&str>) -> Option<String> {
        match (name, argument) {
            ("uuid", None) => Some("UUID".to_owned()),
            ("also_alter", Some(t)) => Some(format!(";\nALTER TABLE {t} ")),
            _ => None,
        }
    }

    #[test]
    fn tokens_are_replaced_and_plain_braces_kept() {
        let sql = render("-- {\"a\": 1}\nid {{uuid}}{{also_alter t}}x", tokens).expect("renders");
        assert_eq!(sql, "-- {\"a\": 1}\nid UUID;\nALTER TABLE t x");
    }

    #[test]
    fn an_unknown_or_unclosed_token_is_an_error_naming_it() {
        let unknown = render("{{nope}}", tokens).expect_err("unknown token");
        assert!(unknown.to_string().contains("nope"), "{unknown}");
        assert!(render("{{uuid", tokens).is_err());
    }
}
