//! `jobd agent`: the resident agent on a host. It connects to NATS (`nats.url`), registers
//! under its id (`agent.id`, the host name by default) and runs the tasks control nodes send
//! it as local processes, until SIGTERM or SIGINT (docs/agent.md).

use std::sync::Arc;

use job_core::transport::Transport;
use job_transport_nats::AgentId;
use job_transport_nats::agent::{self, AgentConfig};

use crate::Failure;
use crate::config::Config;
use crate::serve::{local_transport, say, wait_for_stop_signal};

/// Runs the agent until a stop signal.
pub(crate) async fn agent(config: Config) -> Result<(), Failure> {
    let Some(url) = config.nats.url.clone() else {
        return Err(Failure::Usage(
            "`jobd agent` needs a NATS server: set nats.url (JOBD_NATS_URL), e.g. nats://10.0.0.5:4222"
                .to_owned(),
        ));
    };
    let id = match &config.agent.id {
        Some(id) => id.clone(),
        None => AgentId::from_hostname(&agent::hostname()).to_string(),
    };
    let runner: Arc<dyn Transport> =
        Arc::new(local_transport(&config.agent.work_dir.join("runs")).await);
    let mut settings = AgentConfig::new(url, &id, config.agent.work_dir.clone(), runner)
        .and_then(|c| c.with_prefix(&config.nats.namespace))
        .map_err(|e| Failure::Usage(e.to_string()))?;
    settings.credentials = config.nats.credentials.clone();
    say(&format!(
        "jobd agent `{id}` starting (namespace `{}`, work dir {})",
        config.nats.namespace,
        config.agent.work_dir.display()
    ));
    agent::run(settings, wait_for_stop_signal())
        .await
        .map_err(|e| Failure::Run(format!("the agent stopped: {e}")))?;
    say(&format!("jobd agent `{id}` stopped"));
    Ok(())
}
