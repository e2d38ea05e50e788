//! [`CountingStore`]: a store that counts the calls it forwards.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use super::StoreMethod;
use crate::Result;
use crate::store::Store;

/// Wraps a store and counts every call per method, so a test can state how many writes a
/// run made (for example, that output appends are batched).
#[derive(Debug)]
pub struct CountingStore<S: ?Sized = dyn Store> {
    calls: Mutex<BTreeMap<StoreMethod, u64>>,
    pub(super) inner: Arc<S>,
}

impl<S: Store + ?Sized> CountingStore<S> {
    /// A store that forwards to `inner` and counts.
    pub fn new(inner: Arc<S>) -> Self {
        Self {
            calls: Mutex::new(BTreeMap::new()),
            inner,
        }
    }

    /// The wrapped store, to call without counting.
    pub fn inner(&self) -> &Arc<S> {
        &self.inner
    }

    /// How many calls of `method` were made since the store was created or last reset.
    pub fn calls(&self, method: StoreMethod) -> u64 {
        self.lock().get(&method).copied().unwrap_or(0)
    }

    /// How many calls of every method were made since the store was created or last reset.
    pub fn total_calls(&self) -> u64 {
        self.lock().values().sum()
    }

    /// Starts counting from zero.
    pub fn reset(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<StoreMethod, u64>> {
        self.calls.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts the call; never fails it.
    pub(super) async fn before(&self, method: StoreMethod) -> Result<()> {
        *self.lock().entry(method).or_insert(0) += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::ExecutionId;
    use crate::store::{OutputStore, TeamScope};
    use crate::testkit::decorators::tests::EmptyStore;

    #[tokio::test]
    async fn calls_are_counted_per_method_until_reset() {
        let store = CountingStore::new(Arc::new(EmptyStore));
        for _ in 0..3 {
            let _ = store.append_output(ExecutionId::new(), &[], 10).await;
        }
        let _ = store
            .read_output(&TeamScope::All, ExecutionId::new(), None, None, 10)
            .await;
        assert_eq!(store.calls(StoreMethod::AppendOutput), 3);
        assert_eq!(store.calls(StoreMethod::ReadOutput), 1);
        assert_eq!(store.calls(StoreMethod::Transition), 0);
        assert_eq!(store.total_calls(), 4);
        store.reset();
        assert_eq!(store.total_calls(), 0);
    }
}
