//! The in-process [`Client`]: direct calls into the server, no
//! serialization beyond the store write.

use std::sync::Arc;

use ketch_core::{
    ApiError, ArcObject, Client, DeleteOutcome, DeleteParams, ListParams, Object,
    ObjectEventStream, ObjectList, WatchParams,
};

use crate::auth::UserInfo;
use crate::server::{Caller, Inner};

/// A [`Client`] calling the server in the same process, acting as one
/// identity. Made by [`ApiServer::client`](crate::ApiServer::client) and
/// [`ApiServer::client_as`](crate::ApiServer::client_as).
pub struct InProcessClient {
    inner: Arc<Inner>,
    caller: Caller,
}

impl std::fmt::Debug for InProcessClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InProcessClient")
            .field("user", &self.caller.user.name)
            .finish()
    }
}

impl InProcessClient {
    pub(crate) fn new(inner: Arc<Inner>, user: UserInfo) -> Self {
        Self {
            inner,
            caller: Caller::new(user),
        }
    }

    /// The identity the client acts as.
    pub fn user(&self) -> &UserInfo {
        &self.caller.user
    }
}

#[async_trait::async_trait]
impl Client for InProcessClient {
    async fn create(&self, object: Box<dyn Object>) -> Result<ArcObject, ApiError> {
        self.inner.create(&self.caller, object).await
    }

    async fn get(
        &self,
        resource: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<ArcObject, ApiError> {
        self.inner
            .get(&self.caller, resource, namespace, name)
            .await
    }

    async fn list(
        &self,
        resource: &str,
        namespace: Option<&str>,
        params: &ListParams,
    ) -> Result<ObjectList, ApiError> {
        self.inner
            .list(&self.caller, resource, namespace, params)
            .await
    }

    async fn update(&self, object: Box<dyn Object>) -> Result<ArcObject, ApiError> {
        self.inner.update(&self.caller, object, false).await
    }

    async fn update_status(&self, object: Box<dyn Object>) -> Result<ArcObject, ApiError> {
        self.inner.update(&self.caller, object, true).await
    }

    async fn patch(
        &self,
        resource: &str,
        namespace: Option<&str>,
        name: &str,
        patch: &serde_json::Value,
    ) -> Result<ArcObject, ApiError> {
        self.inner
            .patch(&self.caller, resource, namespace, name, patch)
            .await
    }

    async fn delete(
        &self,
        resource: &str,
        namespace: Option<&str>,
        name: &str,
        params: &DeleteParams,
    ) -> Result<DeleteOutcome, ApiError> {
        self.inner
            .delete(&self.caller, resource, namespace, name, params)
            .await
    }

    async fn watch(
        &self,
        resource: &str,
        namespace: Option<&str>,
        params: &WatchParams,
    ) -> Result<ObjectEventStream, ApiError> {
        self.inner
            .watch(&self.caller, resource, namespace, params)
            .await
    }

    async fn bind(&self, namespace: &str, pod: &str, node: &str) -> Result<ArcObject, ApiError> {
        self.inner.bind(&self.caller, namespace, pod, node).await
    }
}
