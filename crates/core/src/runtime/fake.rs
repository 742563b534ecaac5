//! A small in-memory [`Client`] for pods with a compactable event log and
//! fault injection, used to test reflectors without an API server.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::StreamExt;
use parking_lot::Mutex;
use tokio::sync::mpsc;

use crate::api::Pod;
use crate::{
    ApiError, ArcObject, Client, DeleteOutcome, DeleteParams, ListParams, Object, ObjectEvent,
    ObjectEventStream, ObjectList, ObjectMeta, WatchParams,
};

type Sender = mpsc::UnboundedSender<Result<ObjectEvent, ApiError>>;

#[derive(Default)]
struct State {
    revision: i64,
    objects: BTreeMap<String, Arc<Pod>>,
    log: Vec<(i64, ObjectEvent)>,
    compacted: i64,
    watchers: Vec<Sender>,
    fail_lists: u32,
    fail_watches: u32,
    list_calls: u32,
    watch_calls: u32,
    watch_from: Vec<String>,
}

#[derive(Default)]
pub(crate) struct FakeClient {
    state: Mutex<State>,
}

pub(crate) fn pod(name: &str) -> Pod {
    Pod {
        metadata: ObjectMeta::named("default", name),
        ..Pod::default()
    }
}

impl FakeClient {
    fn record(state: &mut State, event: ObjectEvent) {
        state.log.push((state.revision, event.clone()));
        state.watchers.retain(|w| w.send(Ok(event.clone())).is_ok());
    }

    pub(crate) fn put(&self, mut pod: Pod) -> Arc<Pod> {
        let mut s = self.state.lock();
        s.revision += 1;
        pod.metadata.resource_version = Some(s.revision.to_string());
        let pod = Arc::new(pod);
        let key = pod.metadata.name().to_string();
        let existed = s.objects.insert(key, pod.clone()).is_some();
        let obj: ArcObject = pod.clone();
        let event = if existed {
            ObjectEvent::Modified(obj)
        } else {
            ObjectEvent::Added(obj)
        };
        Self::record(&mut s, event);
        pod
    }

    pub(crate) fn remove(&self, name: &str) {
        let mut s = self.state.lock();
        if let Some(prev) = s.objects.remove(name) {
            s.revision += 1;
            let mut last = (*prev).clone();
            last.metadata.resource_version = Some(s.revision.to_string());
            Self::record(&mut s, ObjectEvent::Deleted(Arc::new(last)));
        }
    }

    /// Forgets the event log up to the current revision.
    pub(crate) fn compact(&self) {
        let mut s = self.state.lock();
        s.compacted = s.revision;
        s.log.clear();
    }

    /// Ends every open watch with `error`.
    pub(crate) fn break_watches(&self, error: ApiError) {
        let mut s = self.state.lock();
        for w in s.watchers.drain(..) {
            let _ = w.send(Err(error.clone()));
        }
    }

    pub(crate) fn fail_next_lists(&self, n: u32) {
        self.state.lock().fail_lists = n;
    }

    pub(crate) fn fail_next_watches(&self, n: u32) {
        self.state.lock().fail_watches = n;
    }

    pub(crate) fn list_calls(&self) -> u32 {
        self.state.lock().list_calls
    }

    pub(crate) fn watch_calls(&self) -> u32 {
        self.state.lock().watch_calls
    }

    pub(crate) fn watch_from(&self) -> Vec<String> {
        self.state.lock().watch_from.clone()
    }

    pub(crate) fn names(&self) -> Vec<(String, String)> {
        self.state
            .lock()
            .objects
            .values()
            .map(|p| {
                (
                    p.metadata.name().to_string(),
                    p.metadata.resource_version.clone().unwrap_or_default(),
                )
            })
            .collect()
    }
}

fn unsupported() -> ApiError {
    ApiError::BadRequest("not supported by the fake client".into())
}

#[async_trait::async_trait]
impl Client for FakeClient {
    async fn create(&self, _object: Box<dyn Object>) -> Result<ArcObject, ApiError> {
        Err(unsupported())
    }

    async fn get(&self, _: &str, _: Option<&str>, _: &str) -> Result<ArcObject, ApiError> {
        Err(unsupported())
    }

    async fn list(
        &self,
        resource: &str,
        _namespace: Option<&str>,
        params: &ListParams,
    ) -> Result<ObjectList, ApiError> {
        let mut s = self.state.lock();
        s.list_calls += 1;
        if resource != "pods" {
            return Err(ApiError::NotFound {
                resource: resource.into(),
                name: String::new(),
            });
        }
        if s.fail_lists > 0 {
            s.fail_lists -= 1;
            return Err(ApiError::Unavailable("injected list failure".into()));
        }
        let after = params.continue_token.clone().unwrap_or_default();
        let limit = params.limit.map_or(usize::MAX, |l| l as usize);
        let rest: Vec<_> = s
            .objects
            .iter()
            .filter(|(k, _)| after.is_empty() || k.as_str() > after.as_str())
            .collect();
        let items: Vec<ArcObject> = rest
            .iter()
            .take(limit)
            .map(|(_, p)| (*p).clone() as ArcObject)
            .collect();
        let continue_token = (rest.len() > limit).then(|| rest[limit - 1].0.clone());
        Ok(ObjectList {
            items,
            resource_version: s.revision.to_string(),
            continue_token,
            remaining_item_count: None,
        })
    }

    async fn update(&self, _object: Box<dyn Object>) -> Result<ArcObject, ApiError> {
        Err(unsupported())
    }

    async fn update_status(&self, _object: Box<dyn Object>) -> Result<ArcObject, ApiError> {
        Err(unsupported())
    }

    async fn patch(
        &self,
        _: &str,
        _: Option<&str>,
        _: &str,
        _: &serde_json::Value,
    ) -> Result<ArcObject, ApiError> {
        Err(unsupported())
    }

    async fn delete(
        &self,
        _: &str,
        _: Option<&str>,
        _: &str,
        _: &DeleteParams,
    ) -> Result<DeleteOutcome, ApiError> {
        Err(unsupported())
    }

    async fn watch(
        &self,
        _resource: &str,
        _namespace: Option<&str>,
        params: &WatchParams,
    ) -> Result<ObjectEventStream, ApiError> {
        let mut s = self.state.lock();
        s.watch_calls += 1;
        let from = params.resource_version.clone().unwrap_or_default();
        s.watch_from.push(from.clone());
        if s.fail_watches > 0 {
            s.fail_watches -= 1;
            return Err(ApiError::Unavailable("injected watch failure".into()));
        }
        let from: i64 = if from.is_empty() || from == "0" {
            s.revision
        } else {
            from.parse()
                .map_err(|_| ApiError::BadRequest(format!("bad resource version {from:?}")))?
        };
        if from < s.compacted {
            return Err(ApiError::Expired(format!(
                "resource version {from} is older than {}",
                s.compacted
            )));
        }
        let (tx, rx) = mpsc::unbounded_channel();
        for (rev, event) in &s.log {
            if *rev > from {
                let _ = tx.send(Ok(event.clone()));
            }
        }
        s.watchers.push(tx);
        Ok(futures::stream::unfold(rx, |mut rx| async move {
            let item = rx.recv().await?;
            Some((item, rx))
        })
        .boxed())
    }

    async fn bind(&self, _: &str, _: &str, _: &str) -> Result<ArcObject, ApiError> {
        Err(unsupported())
    }
}
