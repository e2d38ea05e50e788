//! `jobd`'s configuration: a TOML file plus `JOBD_*` environment overrides, every knob with
//! a default that works on one machine (docs/configuration.md lists them all).
//!
//! The file is read as a table and walked against [`KNOBS`]: a key that is not a knob is an
//! error naming it, and every value is parsed by the type of its knob, so a bad value is an
//! error naming the knob and where it came from (the file, or its environment variable).
//! The environment wins over the file.

mod source;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use job_core::callback::{CallbackAllow, CallbackGuard};
use job_core::engine::EngineConfig;
use job_core::values::Name;

use self::source::{Raw, Sources, parse_file};

/// Every knob: its key in the file (`section.key`). Its environment variable is
/// [`env_var`] of the key.
pub(crate) const KNOBS: &[&str] = &[
    "listen",
    "data_dir",
    "database_url",
    "master_key_file",
    "log",
    "shutdown_grace_secs",
    "local_target.enabled",
    "local_target.name",
    "engine.max_hosts_in_flight",
    "engine.max_hosts_per_execution",
    "engine.output_cap_bytes",
    "engine.cancel_grace_secs",
    "ssh.known_hosts",
    "ssh.trust_on_first_use",
    "ssh.connect_timeout_secs",
    "ssh.idle_secs",
    "http.session_ttl_secs",
    "http.max_body_bytes",
    "http.cookie_secure",
    "http.callback_allow",
    "nats.url",
    "nats.namespace",
    "nats.credentials",
    "agent.id",
    "agent.work_dir",
];

/// The environment variable that overrides `knob`: `JOBD_` and the key in upper case, dots
/// as underscores (`engine.max_hosts_in_flight` → `JOBD_ENGINE_MAX_HOSTS_IN_FLIGHT`).
pub(crate) fn env_var(knob: &str) -> String {
    format!("JOBD_{}", knob.replace('.', "_").to_ascii_uppercase())
}

/// A configuration that could not be loaded: the message names the knob or the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConfigError(pub(crate) String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// Where the database lives.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum Database {
    /// An SQLite file (the embedded default).
    Sqlite(PathBuf),
    /// A PostgreSQL URL (`postgres://…`); may hold a password, so never shown whole.
    Postgres(String),
}

impl fmt::Debug for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sqlite(path) => write!(f, "Sqlite({})", path.display()),
            Self::Postgres(_) => f.write_str("Postgres(******)"),
        }
    }
}

impl fmt::Display for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sqlite(path) => write!(f, "sqlite at {}", path.display()),
            Self::Postgres(_) => f.write_str("postgresql"),
        }
    }
}

/// The control node's own target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LocalTargetConfig {
    /// Whether the control node is registered as a local target on first start.
    pub(crate) enabled: bool,
    /// Its name.
    pub(crate) name: Name,
}

/// The engine knobs an operator may turn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EngineKnobs {
    /// Hosts running at once on this node.
    pub(crate) max_hosts_in_flight: usize,
    /// Hosts running at once within one execution.
    pub(crate) max_hosts_per_execution: usize,
    /// Output stored per host.
    pub(crate) output_cap_bytes: u64,
    /// How long hosts get to report after a cancel.
    pub(crate) cancel_grace: Duration,
}

/// SSH knobs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SshKnobs {
    /// The known_hosts file host keys are checked against.
    pub(crate) known_hosts: PathBuf,
    /// Whether an unknown host key is recorded on first contact.
    pub(crate) trust_on_first_use: bool,
    /// Handshake plus authentication of one connection.
    pub(crate) connect_timeout: Duration,
    /// Pooled connections unused this long are closed.
    pub(crate) idle: Duration,
}

/// HTTP knobs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HttpKnobs {
    /// How long a console session lasts.
    pub(crate) session_ttl: Duration,
    /// The largest request body accepted.
    pub(crate) max_body_bytes: usize,
    /// Whether session cookies are marked `Secure` (HTTPS only).
    pub(crate) cookie_secure: bool,
    /// Callback destinations allowed although internal: host names, addresses, CIDRs.
    pub(crate) callback_allow: CallbackAllow,
}

/// NATS knobs: agent mode, the cluster event bus (control nodes) and the agent's server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NatsKnobs {
    /// The NATS server(s); `None`: no NATS (in-process bus, agent targets refused).
    pub(crate) url: Option<String>,
    /// The prefix of every subject, stream and bucket; control nodes and agents share it.
    pub(crate) namespace: String,
    /// A NATS credentials file, when the server requires one.
    pub(crate) credentials: Option<PathBuf>,
}

/// Knobs of `jobd agent`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AgentKnobs {
    /// The agent's id (what agent-mode targets name); `None`: the host name.
    pub(crate) id: Option<String>,
    /// Where the agent keeps its record of started tasks and receives files.
    pub(crate) work_dir: PathBuf,
}

/// The whole configuration, resolved: every knob has its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Config {
    /// Address the HTTP server binds.
    pub(crate) listen: SocketAddr,
    /// Where the database (by default), the master key, known_hosts and the node id live.
    pub(crate) data_dir: PathBuf,
    /// The store.
    pub(crate) database: Database,
    /// Where the master key is kept when `JOBD_MASTER_KEY` is not given.
    pub(crate) master_key_file: PathBuf,
    /// The log filter (tracing `EnvFilter` syntax).
    pub(crate) log: String,
    /// How long running host runs get to finish at shutdown before they are interrupted.
    pub(crate) shutdown_grace: Duration,
    /// The control node's own target.
    pub(crate) local_target: LocalTargetConfig,
    /// The engine.
    pub(crate) engine: EngineKnobs,
    /// SSH.
    pub(crate) ssh: SshKnobs,
    /// HTTP.
    pub(crate) http: HttpKnobs,
    /// NATS.
    pub(crate) nats: NatsKnobs,
    /// The agent (`jobd agent`).
    pub(crate) agent: AgentKnobs,
}

/// HTTP defaults, the same as `job_http::HttpConfig::default()`.
fn http_defaults() -> HttpKnobs {
    let d = job_http::HttpConfig::default();
    HttpKnobs {
        session_ttl: d.session_ttl,
        max_body_bytes: d.max_body_bytes,
        cookie_secure: d.cookie_secure,
        callback_allow: d.callback_guard.allow().clone(),
    }
}

impl Config {
    /// Loads the configuration: the file `file` (if any) under the environment `env`.
    pub(crate) fn load(
        file: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let table = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    ConfigError(format!(
                        "cannot read the config file {}: {e}",
                        path.display()
                    ))
                })?;
                parse_file(&text)
                    .map_err(|e| ConfigError(format!("config file {}: {}", path.display(), e.0)))?
            }
            None => BTreeMap::new(),
        };
        Self::resolve(&Sources { file: table, env })
    }

    fn resolve(src: &Sources<'_>) -> Result<Self, ConfigError> {
        let engine = EngineConfig::default();
        let http = http_defaults();
        let listen = match src.get("listen") {
            Some(raw) => raw.parse_with("an address like 127.0.0.1:8080", |s| {
                s.parse::<SocketAddr>().ok()
            })?,
            None => SocketAddr::from(([127, 0, 0, 1], 8080)),
        };
        let data_dir = src
            .path("data_dir")?
            .unwrap_or_else(|| PathBuf::from("./data"));
        let database = match src.get("database_url") {
            Some(raw) => parse_database(&raw)?,
            None => Database::Sqlite(data_dir.join("jobd.db")),
        };
        let master_key_file = src
            .path("master_key_file")?
            .unwrap_or_else(|| data_dir.join("master.key"));
        // JOBD_LOG, then RUST_LOG, then the file.
        let log_raw = match (src.env)(&env_var("log")) {
            Some(_) => src.get("log"),
            None => src.env_raw("RUST_LOG").or_else(|| src.get("log")),
        };
        let log = match log_raw {
            Some(raw) => {
                let text = raw.string()?;
                if tracing_subscriber::EnvFilter::try_new(&text).is_err() {
                    return Err(raw.refuse("a log filter such as `info` or `jobd=debug,info`"));
                }
                text
            }
            None => "info".to_owned(),
        };
        let shutdown_grace = src.secs("shutdown_grace_secs", 0)?.unwrap_or(10);
        let local_target = LocalTargetConfig {
            enabled: src.bool("local_target.enabled")?.unwrap_or(true),
            name: match src.get("local_target.name") {
                Some(raw) => {
                    let text = raw.string()?;
                    Name::parse("local_target.name", &text)
                        .map_err(|_| raw.refuse("a non-empty name of at most 255 characters"))?
                }
                None => Name::parse("local_target.name", "control-node")
                    .map_err(|e| ConfigError(e.to_string()))?,
            },
        };
        let engine = EngineKnobs {
            max_hosts_in_flight: src
                .count("engine.max_hosts_in_flight")?
                .unwrap_or(engine.max_hosts_in_flight),
            max_hosts_per_execution: src
                .count("engine.max_hosts_per_execution")?
                .unwrap_or(engine.max_hosts_per_execution),
            output_cap_bytes: src
                .number("engine.output_cap_bytes", 1)?
                .unwrap_or(engine.output_cap_bytes),
            cancel_grace: src
                .secs("engine.cancel_grace_secs", 1)?
                .map_or(engine.cancel_grace, Duration::from_secs),
        };
        let ssh = SshKnobs {
            known_hosts: src
                .path("ssh.known_hosts")?
                .unwrap_or_else(|| data_dir.join("known_hosts")),
            trust_on_first_use: src.bool("ssh.trust_on_first_use")?.unwrap_or(false),
            connect_timeout: Duration::from_secs(
                src.secs("ssh.connect_timeout_secs", 1)?.unwrap_or(10),
            ),
            idle: Duration::from_secs(src.secs("ssh.idle_secs", 1)?.unwrap_or(300)),
        };
        let http = HttpKnobs {
            session_ttl: src
                .secs("http.session_ttl_secs", 1)?
                .map_or(http.session_ttl, Duration::from_secs),
            max_body_bytes: src
                .count("http.max_body_bytes")?
                .unwrap_or(http.max_body_bytes),
            cookie_secure: src
                .bool("http.cookie_secure")?
                .unwrap_or(http.cookie_secure),
            callback_allow: match src.list("http.callback_allow")? {
                None => http.callback_allow,
                Some(entries) => CallbackAllow::parse("http.callback_allow", &entries)
                    .map_err(|e| ConfigError(e.to_string()))?,
            },
        };
        let nats = NatsKnobs {
            url: match src.get("nats.url") {
                Some(raw) => {
                    let url = raw.string()?;
                    if url.trim().is_empty() {
                        None
                    } else if url.split(',').all(|u| {
                        let u = u.trim();
                        !u.is_empty() && !u.contains(char::is_whitespace)
                    }) {
                        Some(url)
                    } else {
                        return Err(raw.refuse_quietly(
                            "a NATS URL such as nats://127.0.0.1:4222 (comma-separated for several)",
                        ));
                    }
                }
                None => None,
            },
            namespace: match src.get("nats.namespace") {
                Some(raw) => {
                    let text = raw.string()?;
                    job_transport_nats::Namespace::parse("nats.namespace", &text)
                        .map_err(|_| raw.refuse("1 to 32 ASCII letters, digits, `_` or `-`"))?;
                    text
                }
                None => job_transport_nats::Namespace::default().as_str().to_owned(),
            },
            credentials: src.path("nats.credentials")?,
        };
        let agent = AgentKnobs {
            id: match src.get("agent.id") {
                Some(raw) => {
                    let text = raw.string()?;
                    job_transport_nats::AgentId::parse("agent.id", &text)
                        .map_err(|_| raw.refuse("1 to 128 ASCII letters, digits, `_` or `-`"))?;
                    Some(text)
                }
                None => None,
            },
            work_dir: src
                .path("agent.work_dir")?
                .unwrap_or_else(|| data_dir.join("agent")),
        };
        Ok(Self {
            listen,
            data_dir,
            database,
            master_key_file,
            log,
            shutdown_grace: Duration::from_secs(shutdown_grace),
            local_target,
            engine,
            ssh,
            http,
            nats,
            agent,
        })
    }

    /// The one callback guard of this node: the configured allow-list and the system
    /// resolver; REST and the NATS open interfaces share it.
    pub(crate) fn callback_guard(&self) -> CallbackGuard {
        CallbackGuard::new(
            self.http.callback_allow.clone(),
            Arc::new(job_http::DnsResolver),
        )
    }

    /// The settings of `job-http`, checking callback URLs with `callback_guard`.
    pub(crate) fn http_config(&self, callback_guard: CallbackGuard) -> job_http::HttpConfig {
        job_http::HttpConfig {
            session_ttl: self.http.session_ttl,
            max_body_bytes: self.http.max_body_bytes,
            cookie_secure: self.http.cookie_secure,
            callback_guard,
        }
    }

    /// The engine's settings, with this node's id.
    pub(crate) fn engine_config(&self, node_id: String) -> EngineConfig {
        EngineConfig {
            node_id,
            max_hosts_in_flight: self.engine.max_hosts_in_flight,
            max_hosts_per_execution: self.engine.max_hosts_per_execution,
            output_cap_bytes: self.engine.output_cap_bytes,
            cancel_grace: self.engine.cancel_grace,
            ..EngineConfig::default()
        }
    }
}

fn parse_database(raw: &Raw) -> Result<Database, ConfigError> {
    let url = raw.string()?;
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Database::Postgres(url));
    }
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"));
    match path {
        Some(p) if !p.is_empty() => Ok(Database::Sqlite(PathBuf::from(p))),
        _ => Err(raw.refuse_quietly("a `sqlite:PATH` or `postgres://…` URL")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(file: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let env: BTreeMap<String, String> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let lookup = move |k: &str| env.get(k).cloned();
        Config::resolve(&Sources {
            file: parse_file(file)?,
            env: &lookup,
        })
    }

    #[test]
    fn no_file_and_no_environment_gives_the_documented_defaults() {
        let c = load("", &[]).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.data_dir, PathBuf::from("./data"));
        assert_eq!(
            c.database,
            Database::Sqlite(PathBuf::from("./data/jobd.db"))
        );
        assert_eq!(c.master_key_file, PathBuf::from("./data/master.key"));
        assert_eq!(c.ssh.known_hosts, PathBuf::from("./data/known_hosts"));
        assert_eq!(c.log, "info");
        assert_eq!(c.shutdown_grace, Duration::from_secs(10));
        assert!(c.local_target.enabled);
        assert_eq!(c.local_target.name.as_str(), "control-node");
        assert!(!c.ssh.trust_on_first_use);
    }

    #[test]
    fn the_environment_wins_over_the_file() {
        let file = "listen = \"127.0.0.1:9000\"\n[engine]\nmax_hosts_in_flight = 7\n";
        let c = load(file, &[]).unwrap();
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.engine.max_hosts_in_flight, 7);
        let c = load(
            file,
            &[
                ("JOBD_LISTEN", "127.0.0.1:0"),
                ("JOBD_ENGINE_MAX_HOSTS_IN_FLIGHT", "3"),
                ("JOBD_HTTP_CALLBACK_ALLOW", "10.0.0.0/8, hooks.internal"),
                ("JOBD_LOCAL_TARGET_ENABLED", "false"),
            ],
        )
        .unwrap();
        assert_eq!(c.listen.port(), 0);
        assert_eq!(c.engine.max_hosts_in_flight, 3);
        assert_eq!(
            c.http.callback_allow,
            CallbackAllow::parse(
                "http.callback_allow",
                &["10.0.0.0/8".to_owned(), "hooks.internal".to_owned()]
            )
            .unwrap()
        );
        let err = load("", &[("JOBD_HTTP_CALLBACK_ALLOW", "10.0.0.0/40")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid http.callback_allow[0]: `/40` is not a prefix length from 0 to 32"
        );
        assert!(!c.local_target.enabled);
    }

    #[test]
    fn paths_follow_the_data_dir_unless_given() {
        let c = load(
            "data_dir = \"/srv/jobd\"\nmaster_key_file = \"/etc/jobd.key\"\n",
            &[],
        )
        .unwrap();
        assert_eq!(
            c.database,
            Database::Sqlite(PathBuf::from("/srv/jobd/jobd.db"))
        );
        assert_eq!(c.master_key_file, PathBuf::from("/etc/jobd.key"));
        assert_eq!(c.ssh.known_hosts, PathBuf::from("/srv/jobd/known_hosts"));
    }

    #[test]
    fn database_urls_select_the_store() {
        let c = load("database_url = \"sqlite:/tmp/x.db\"", &[]).unwrap();
        assert_eq!(c.database, Database::Sqlite(PathBuf::from("/tmp/x.db")));
        let c = load("", &[("JOBD_DATABASE_URL", "postgres://u:secret@h/db")]).unwrap();
        assert_eq!(
            c.database,
            Database::Postgres("postgres://u:secret@h/db".into())
        );
        assert!(!format!("{c:?}").contains("secret"));
        let err = load("", &[("JOBD_DATABASE_URL", "mysql://u:secret@h/db")]).unwrap_err();
        assert!(err.0.contains("database_url"), "{err}");
        assert!(!err.0.contains("secret"), "{err}");
    }

    #[test]
    fn unknown_keys_are_refused_by_name() {
        for (file, key) in [
            ("lisen = \"x\"", "lisen"),
            ("[engine]\nmax_hosts = 3", "engine.max_hosts"),
            ("[nope]\na = 1", "nope"),
        ] {
            let err = load(file, &[]).unwrap_err();
            assert!(err.0.contains(&format!("unknown key `{key}`")), "{err}");
        }
    }

    #[test]
    fn bad_values_are_refused_naming_the_knob_and_its_origin() {
        let err = load("[engine]\nmax_hosts_in_flight = \"many\"", &[]).unwrap_err();
        assert!(err.0.contains("engine.max_hosts_in_flight"), "{err}");
        assert!(err.0.contains("config file"), "{err}");
        let err = load("", &[("JOBD_ENGINE_MAX_HOSTS_IN_FLIGHT", "0")]).unwrap_err();
        assert!(err.0.contains("JOBD_ENGINE_MAX_HOSTS_IN_FLIGHT"), "{err}");
        let err = load("", &[("JOBD_LISTEN", "localhost")]).unwrap_err();
        assert!(err.0.contains("invalid listen"), "{err}");
        let err = load("[ssh]\ntrust_on_first_use = \"yes\"", &[]).unwrap_err();
        assert!(err.0.contains("ssh.trust_on_first_use"), "{err}");
        let err = load("", &[("JOBD_LOG", "jobd=[")]).unwrap_err();
        assert!(err.0.contains("invalid log"), "{err}");
        let err = load("shutdown_grace_secs = -1", &[]).unwrap_err();
        assert!(err.0.contains("shutdown_grace_secs"), "{err}");
    }

    #[test]
    fn every_knob_is_documented_with_its_environment_variable() {
        let doc = include_str!("../../../docs/configuration.md");
        for knob in KNOBS {
            assert!(
                doc.contains(&format!("`{knob}`")),
                "{knob} is not documented"
            );
            let var = env_var(knob);
            assert!(doc.contains(&format!("`{var}`")), "{var} is not documented");
        }
    }
}
