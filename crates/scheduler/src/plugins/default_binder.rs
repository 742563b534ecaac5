//! DefaultBinder: binds the pod to the chosen node through the API
//! (`pods/binding`).

use std::sync::Arc;

use ketch_core::Client;

use crate::framework::{BindPlugin, ClusterEvent, CycleState, Plugin, PodInfo, Status};

/// Binds through [`Client::bind`].
#[derive(Clone)]
pub struct DefaultBinder {
    client: Arc<dyn Client>,
}

impl std::fmt::Debug for DefaultBinder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DefaultBinder").finish_non_exhaustive()
    }
}

impl DefaultBinder {
    /// The registry name.
    pub const NAME: &'static str = "DefaultBinder";

    /// A binder writing through `client`.
    pub fn new(client: Arc<dyn Client>) -> Self {
        Self { client }
    }
}

impl Plugin for DefaultBinder {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn events_to_register(&self) -> Vec<ClusterEvent> {
        Vec::new()
    }

    fn as_bind(&self) -> Option<&dyn BindPlugin> {
        Some(self)
    }
}

#[async_trait::async_trait]
impl BindPlugin for DefaultBinder {
    async fn bind(&self, _: &CycleState, pod: &PodInfo, node_name: &str) -> Status {
        let meta = &pod.pod.metadata;
        match self
            .client
            .bind(meta.namespace(), meta.name(), node_name)
            .await
        {
            Ok(_) => Status::success(),
            Err(e) => Status::error(format!("binding {} to {node_name}: {e}", pod.key)),
        }
    }
}

#[cfg(test)]
mod tests {
    use ketch_core::ApiError;

    use super::*;
    use crate::framework::Code;
    use crate::plugins::testing::{PodBuilder, RecordingClient};

    #[tokio::test]
    async fn binds_through_the_client_and_reports_failures() {
        let client = Arc::new(RecordingClient::default());
        let binder = DefaultBinder::new(client.clone());
        let pod = PodBuilder::new("web").namespace("shop").build();
        let s = binder.bind(&CycleState::default(), &pod, "n7").await;
        assert!(s.is_success());
        assert_eq!(
            client.binds().as_slice(),
            [("shop".to_string(), "web".to_string(), "n7".to_string())]
        );
        client.fail_bind(ApiError::Conflict("already bound".into()));
        let s = binder.bind(&CycleState::default(), &pod, "n8").await;
        assert_eq!(s.code(), Code::Error);
        assert!(s.reasons()[0].contains("already bound"));
    }
}
