//! How `jobd`'s engine reaches a host: the control node as local processes, agentless
//! targets over one shared SSH transport (its pool) with the credential opened in memory
//! only, and agent-mode targets over NATS when `nats.url` is set.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use job_core::Error;
use job_core::engine::HostConnector;
use job_core::model::{Execution, TargetMode, TargetSnapshot};
use job_core::secret::{SecretBox, open_credential};
use job_core::store::{Store, TeamScope};
use job_core::transport::{HostAccess, HostTarget, SshAccess, Transport, TransportError};

/// The connector of a `jobd` node.
pub(crate) struct NodeConnector {
    store: Arc<dyn Store>,
    secrets: Arc<dyn SecretBox>,
    local: Arc<dyn Transport>,
    ssh: Arc<dyn Transport>,
    agents: Option<Arc<dyn Transport>>,
}

impl fmt::Debug for NodeConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeConnector")
            .field("local", &self.local)
            .field("ssh", &self.ssh)
            .field("agents", &self.agents)
            .finish_non_exhaustive()
    }
}

impl NodeConnector {
    /// Reads live targets and credentials from `store`, opens secrets with `secrets`, runs
    /// local targets on `local` and agentless ones on `ssh`.
    pub(crate) fn new(
        store: Arc<dyn Store>,
        secrets: Arc<dyn SecretBox>,
        local: Arc<dyn Transport>,
        ssh: Arc<dyn Transport>,
    ) -> Self {
        Self {
            store,
            secrets,
            local,
            ssh,
            agents: None,
        }
    }

    /// Runs agent-mode targets on `agents` (the NATS transport).
    pub(crate) fn with_agents(mut self, agents: Arc<dyn Transport>) -> Self {
        self.agents = Some(agents);
        self
    }

    async fn agent(
        &self,
        execution: &Execution,
        host: &TargetSnapshot,
    ) -> Result<HostTarget, TransportError> {
        let scope = TeamScope::team(execution.team_id);
        let target = self
            .store
            .get_target(&scope, host.target_id)
            .await
            .map_err(|e| store_error(&host.name, "target", e))?;
        let TargetMode::Agent { agent_id } = target.mode else {
            return Err(TransportError::unsupported(format!(
                "target `{}` is no longer an agent-mode target (now `{}` mode)",
                host.name,
                target.mode.as_str()
            )));
        };
        Ok(HostTarget {
            name: host.name.to_string(),
            os: host.os,
            access: HostAccess::Agent {
                agent_id: agent_id.to_string(),
            },
        })
    }

    async fn agentless(
        &self,
        execution: &Execution,
        host: &TargetSnapshot,
    ) -> Result<HostTarget, TransportError> {
        // Within the execution's team only: a target moved or deleted since the launch is
        // "not found", never another team's.
        let scope = TeamScope::team(execution.team_id);
        let target = self
            .store
            .get_target(&scope, host.target_id)
            .await
            .map_err(|e| store_error(&host.name, "target", e))?;
        let TargetMode::Agentless {
            port,
            user,
            credential_id,
        } = target.mode
        else {
            return Err(TransportError::unsupported(format!(
                "target `{}` is no longer an agentless target (now `{}` mode)",
                host.name,
                target.mode.as_str()
            )));
        };
        let credential = self
            .store
            .get_credential(&scope, credential_id)
            .await
            .map_err(|e| store_error(&host.name, "credential", e))?;
        let secret = open_credential(self.secrets.as_ref(), &credential.secret_ciphertext)
            .map_err(|e| TransportError::AuthenticationFailed {
                reason: format!(
                    "the credential `{}` of target `{}` cannot be opened: {e}",
                    credential.name, host.name
                ),
            })?;
        Ok(HostTarget {
            name: host.name.to_string(),
            os: host.os,
            access: HostAccess::Ssh(SshAccess {
                address: host.address.clone(),
                port,
                user: user.to_string(),
                secret,
            }),
        })
    }
}

fn store_error(host: &str, what: &str, e: Error) -> TransportError {
    match e {
        Error::NotFound { .. } => TransportError::NotFound {
            path: format!("the {what} of target `{host}` (deleted since the launch?)"),
        },
        other => TransportError::failed(
            format!("cannot read the {what} of target `{host}` from the store"),
            other,
        ),
    }
}

#[async_trait]
impl HostConnector for NodeConnector {
    async fn connect(
        &self,
        execution: &Execution,
        host: &TargetSnapshot,
    ) -> Result<(Arc<dyn Transport>, HostTarget), TransportError> {
        match host.mode.as_str() {
            "local" => Ok((
                self.local.clone(),
                HostTarget {
                    name: host.name.to_string(),
                    os: host.os,
                    access: HostAccess::Local,
                },
            )),
            "agentless" => {
                let target = self.agentless(execution, host).await?;
                Ok((self.ssh.clone(), target))
            }
            "agent" => match &self.agents {
                Some(agents) => {
                    let target = self.agent(execution, host).await?;
                    Ok((agents.clone(), target))
                }
                None => Err(TransportError::unsupported(format!(
                    "target `{}` is in agent mode, which needs NATS; set nats.url (JOBD_NATS_URL)",
                    host.name
                ))),
            },
            other => Err(TransportError::unsupported(format!(
                "target `{}` has the unknown mode `{other}`",
                host.name
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use job_core::ids::CredentialId;
    use job_core::model::{Credential, CredentialSecret};
    use job_core::secret::{MasterKey, seal_credential};
    use job_core::testkit::store::fixtures;
    use job_core::values::Port;

    struct Setup {
        _dir: tempfile::TempDir,
        store: Arc<dyn Store>,
        connector: NodeConnector,
    }

    async fn setup() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(
            job_store_sqlite::SqliteStore::open(dir.path().join("db"))
                .await
                .unwrap(),
        );
        let key: Arc<dyn SecretBox> = Arc::new(MasterKey::generate());
        let local: Arc<dyn Transport> = Arc::new(job_transport_local::LocalTransport::new());
        let connector = NodeConnector::new(store.clone(), key, local.clone(), local);
        Setup {
            _dir: dir,
            store,
            connector,
        }
    }

    fn snapshot(target: &job_core::model::Target) -> TargetSnapshot {
        TargetSnapshot {
            target_id: target.id,
            name: target.name.clone(),
            address: target.address.clone(),
            os: target.os,
            mode: target.mode.as_str().to_owned(),
        }
    }

    /// An agentless target of `team` with a password credential sealed under `key`.
    async fn agentless(
        store: &dyn Store,
        key: &dyn SecretBox,
        team: job_core::ids::TeamId,
    ) -> job_core::model::Target {
        let secret = CredentialSecret::Password {
            password: "s3cret-pw".into(),
        };
        let credential = Credential {
            id: CredentialId::new(),
            team_id: team,
            name: fixtures::name("pw"),
            kind: secret.kind().to_owned(),
            secret_ciphertext: seal_credential(key, &secret).unwrap(),
            created_at: fixtures::now(),
        };
        store.create_credential(&credential).await.unwrap();
        let mut target = fixtures::target(team, "web-1", "127.0.0.9");
        target.mode = TargetMode::Agentless {
            port: Port::new("port", 2222).unwrap(),
            user: fixtures::name("deploy"),
            credential_id: credential.id,
        };
        store.create_target(&target).await.unwrap();
        target
    }

    #[tokio::test]
    async fn an_agentless_host_gets_its_live_port_user_and_opened_credential() {
        let s = setup().await;
        let team = fixtures::team(s.store.as_ref(), "a").await;
        let target = agentless(s.store.as_ref(), s.connector.secrets.as_ref(), team.id).await;
        let (execution, _) = fixtures::execution(team.id, 1, fixtures::now());
        let (_, host) = s
            .connector
            .connect(&execution, &snapshot(&target))
            .await
            .unwrap();
        let HostAccess::Ssh(access) = host.access else {
            panic!("not ssh: {host:?}");
        };
        assert_eq!(access.address.as_str(), "127.0.0.9");
        assert_eq!(access.port.get(), 2222);
        assert_eq!(access.user, "deploy");
        assert_eq!(
            access.secret,
            CredentialSecret::Password {
                password: "s3cret-pw".into()
            }
        );
    }

    #[tokio::test]
    async fn another_teams_target_is_not_found_for_an_execution() {
        let s = setup().await;
        let mine = fixtures::team(s.store.as_ref(), "mine").await;
        let theirs = fixtures::team(s.store.as_ref(), "theirs").await;
        let target = agentless(s.store.as_ref(), s.connector.secrets.as_ref(), theirs.id).await;
        let (execution, _) = fixtures::execution(mine.id, 1, fixtures::now());
        let err = s
            .connector
            .connect(&execution, &snapshot(&target))
            .await
            .unwrap_err();
        assert_eq!(err.code(), "not_found", "{err}");
    }

    #[tokio::test]
    async fn a_credential_sealed_under_another_key_fails_the_host_clearly() {
        let s = setup().await;
        let team = fixtures::team(s.store.as_ref(), "a").await;
        let target = agentless(s.store.as_ref(), &MasterKey::generate(), team.id).await;
        let (execution, _) = fixtures::execution(team.id, 1, fixtures::now());
        let err = s
            .connector
            .connect(&execution, &snapshot(&target))
            .await
            .unwrap_err();
        assert_eq!(err.code(), "authentication_failed", "{err}");
        assert!(err.to_string().contains("cannot be opened"), "{err}");
        assert!(!err.to_string().contains("s3cret-pw"));
    }

    #[tokio::test]
    async fn agent_targets_ask_for_nats_and_local_ones_run_locally() {
        let s = setup().await;
        let team = fixtures::team(s.store.as_ref(), "a").await;
        let (execution, _) = fixtures::execution(team.id, 1, fixtures::now());
        let mut target = fixtures::target(team.id, "box", "127.0.0.1");
        let (transport, host) = s
            .connector
            .connect(&execution, &snapshot(&target))
            .await
            .unwrap();
        assert_eq!(transport.kind(), "local");
        assert!(matches!(host.access, HostAccess::Local));
        target.mode = TargetMode::Agent {
            agent_id: fixtures::name("agent-1"),
        };
        let err = s
            .connector
            .connect(&execution, &snapshot(&target))
            .await
            .unwrap_err();
        assert_eq!(err.code(), "unsupported");
        assert!(err.to_string().contains("set nats.url"), "{err}");
    }
}
