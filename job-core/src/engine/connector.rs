//! How the engine reaches one host: which transport, and the target as that transport
//! needs it (credentials decrypted). The composition (`jobd`, or an embedding application)
//! provides it; the engine never sees a backend.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use crate::model::{Execution, TargetSnapshot};
use crate::transport::{HostAccess, HostTarget, Transport, TransportError};

/// Resolves a host of an execution to a transport and a target.
#[async_trait]
pub trait HostConnector: Send + Sync + fmt::Debug {
    /// The transport and target for `host` of `execution`. An error fails that host alone
    /// (its message is recorded on the host run).
    async fn connect(
        &self,
        execution: &Execution,
        host: &TargetSnapshot,
    ) -> Result<(Arc<dyn Transport>, HostTarget), TransportError>;
}

/// Runs every host of mode `local` on one transport (the control node's own target) and
/// refuses the rest. Enough for a single machine and for tests; `jobd` composes a connector
/// that also reaches SSH targets and agents.
#[derive(Debug, Clone)]
pub struct LocalConnector {
    transport: Arc<dyn Transport>,
}

impl LocalConnector {
    /// Runs local targets on `transport`.
    pub fn new(transport: Arc<dyn Transport>) -> Self {
        Self { transport }
    }
}

#[async_trait]
impl HostConnector for LocalConnector {
    async fn connect(
        &self,
        _execution: &Execution,
        host: &TargetSnapshot,
    ) -> Result<(Arc<dyn Transport>, HostTarget), TransportError> {
        if host.mode != "local" {
            return Err(TransportError::unsupported(format!(
                "target `{}` is reached in `{}` mode, which this node is not set up for",
                host.name, host.mode
            )));
        }
        let target = HostTarget {
            name: host.name.to_string(),
            os: host.os,
            access: HostAccess::Local,
        };
        Ok((self.transport.clone(), target))
    }
}
