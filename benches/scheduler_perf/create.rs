//! Creating many objects through the API at once, from many tasks, so that
//! creation does not limit what is measured.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ketch_core::{Api, ApiError, Object, Resource};
use serde::de::DeserializeOwned;

/// How many creations run at once.
pub const CONCURRENCY: usize = 64;

/// Attempts per object on retryable errors.
const ATTEMPTS: usize = 10;

/// Creates `count` objects built by `make(i)` through `api`, from
/// [`CONCURRENCY`] tasks. Retryable errors are retried with a short pause;
/// the first final error is returned.
pub async fn create_all<K, F>(api: Api<K>, count: usize, make: F) -> Result<(), String>
where
    K: Resource + Object + DeserializeOwned,
    F: Fn(usize) -> K + Send + Sync + 'static,
{
    let next = Arc::new(AtomicUsize::new(0));
    let make = Arc::new(make);
    let mut tasks: Vec<tokio::task::JoinHandle<Result<(), String>>> =
        Vec::with_capacity(CONCURRENCY);
    for _ in 0..CONCURRENCY.min(count.max(1)) {
        let (api, next, make) = (api.clone(), next.clone(), make.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    return Ok(());
                }
                create_one(&api, || make(i)).await?;
            }
        }));
    }
    for task in tasks {
        task.await
            .map_err(|e| format!("a creating task failed: {e}"))??;
    }
    Ok(())
}

/// Creates the object `make` builds, retrying retryable errors with a fresh
/// copy (an object that turns out to exist on a retry was created by the
/// earlier attempt).
pub async fn create_one<K>(api: &Api<K>, make: impl Fn() -> K) -> Result<(), String>
where
    K: Resource + Object + DeserializeOwned,
{
    let mut attempt = 0;
    loop {
        attempt += 1;
        let object = make();
        let name = format!("{} {}", K::KIND, object.meta().name());
        match api.create(object).await {
            Ok(_) => return Ok(()),
            Err(e) if e.is_retryable() && attempt < ATTEMPTS => {
                tokio::time::sleep(Duration::from_millis(10 * attempt as u64)).await;
            }
            Err(ApiError::AlreadyExists { .. }) if attempt > 1 => return Ok(()),
            Err(e) => return Err(format!("creating {name}: {e}")),
        }
    }
}
