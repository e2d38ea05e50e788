//! [`FaultyStore`]: a store whose calls fail, wait or lose their connection on demand.

use std::collections::BTreeMap;
use std::ops::{Bound, RangeBounds};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::StoreMethod;
use crate::store::Store;
use crate::{Error, Result};

/// Wraps a store and injects the faults a test programs: the Nth call of a method fails
/// with [`Error::Unavailable`] or is delayed, or the connection is lost from the Nth call
/// on (every later call of any method fails) until [`FaultyStore::restore`].
///
/// Calls are numbered from 1, counted from the moment the fault is programmed: per method
/// for [`fail_calls`](FaultyStore::fail_calls) and [`delay_calls`](FaultyStore::delay_calls),
/// over every method for [`lose_connection_from_call`](FaultyStore::lose_connection_from_call).
/// A failed call never reaches the wrapped store, so it changed nothing there.
#[derive(Debug)]
pub struct FaultyStore<S: ?Sized = dyn Store> {
    faults: Mutex<Faults>,
    pub(super) inner: Arc<S>,
}

#[derive(Debug, Default)]
struct Faults {
    /// Calls seen so far, per method.
    calls: BTreeMap<StoreMethod, u64>,
    /// Calls seen so far, of every method.
    total: u64,
    rules: Vec<Rule>,
    /// The first call (in `total`'s numbering) that finds the connection lost.
    lost_from: Option<u64>,
    /// Calls failed by a fault so far.
    injected: u64,
}

/// A fault on the calls `first..=last` (in the method's own numbering since the store was
/// created) of `method`.
#[derive(Debug, Clone, Copy)]
struct Rule {
    method: StoreMethod,
    first: u64,
    last: u64,
    effect: Effect,
}

#[derive(Debug, Clone, Copy)]
enum Effect {
    Fail,
    Delay(Duration),
}

impl<S: Store + ?Sized> FaultyStore<S> {
    /// A store that behaves like `inner` until faults are programmed.
    pub fn new(inner: Arc<S>) -> Self {
        Self {
            faults: Mutex::new(Faults::default()),
            inner,
        }
    }

    /// The wrapped store, to read or write past every fault.
    pub fn inner(&self) -> &Arc<S> {
        &self.inner
    }

    /// The `n`th call of `method` from now fails.
    pub fn fail_call(&self, method: StoreMethod, n: u64) {
        self.fail_calls(method, n..=n);
    }

    /// The calls of `method` numbered in `calls` from now fail (`1..=3`: the next three;
    /// `2..`: every one after the next).
    pub fn fail_calls(&self, method: StoreMethod, calls: impl RangeBounds<u64>) {
        self.add(method, &calls, Effect::Fail);
    }

    /// The calls of `method` numbered in `calls` from now wait `by` before they go on.
    pub fn delay_calls(&self, method: StoreMethod, calls: impl RangeBounds<u64>, by: Duration) {
        self.add(method, &calls, Effect::Delay(by));
    }

    /// The connection is lost at the `n`th call from now, of any method: that call and
    /// every later one fails until [`FaultyStore::restore`].
    pub fn lose_connection_from_call(&self, n: u64) {
        let mut f = self.lock();
        f.lost_from = Some(f.total + n.max(1));
    }

    /// The connection is lost now: every call fails until [`FaultyStore::restore`].
    pub fn lose_connection(&self) {
        self.lose_connection_from_call(1);
    }

    /// The connection is back (the programmed per-method faults stay).
    pub fn restore(&self) {
        self.lock().lost_from = None;
    }

    /// Every fault is cleared and the connection is back.
    pub fn clear(&self) {
        let mut f = self.lock();
        f.rules.clear();
        f.lost_from = None;
    }

    /// Whether a call made now would find the connection lost.
    pub fn is_connection_lost(&self) -> bool {
        let f = self.lock();
        f.lost_from.is_some_and(|from| f.total + 1 >= from)
    }

    /// How many calls the faults have failed so far (to check that a test's faults fired).
    pub fn injected_failures(&self) -> u64 {
        self.lock().injected
    }

    fn add(&self, method: StoreMethod, calls: &impl RangeBounds<u64>, effect: Effect) {
        let first = match calls.start_bound() {
            Bound::Included(n) => *n,
            Bound::Excluded(n) => n.saturating_add(1),
            Bound::Unbounded => 1,
        }
        .max(1);
        let last = match calls.end_bound() {
            Bound::Included(n) => *n,
            Bound::Excluded(n) => n.saturating_sub(1),
            Bound::Unbounded => u64::MAX,
        };
        let mut f = self.lock();
        let base = f.calls.get(&method).copied().unwrap_or(0);
        f.rules.push(Rule {
            method,
            first: base.saturating_add(first),
            last: base.saturating_add(last),
            effect,
        });
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Faults> {
        self.faults.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts the call and applies its faults: waits for its delays, then fails it or lets
    /// it through. The lock is released before any wait.
    pub(super) async fn before(&self, method: StoreMethod) -> Result<()> {
        let (delay, fail) = {
            let mut f = self.lock();
            f.total += 1;
            let total = f.total;
            let n = f.calls.entry(method).or_insert(0);
            *n += 1;
            let n = *n;
            let lost = f.lost_from.is_some_and(|from| total >= from);
            let mut delay = Duration::ZERO;
            let mut fail = lost;
            for rule in f
                .rules
                .iter()
                .filter(|r| r.method == method && (r.first..=r.last).contains(&n))
            {
                match rule.effect {
                    Effect::Fail => fail = true,
                    Effect::Delay(by) => delay += by,
                }
            }
            if fail {
                f.injected += 1;
            }
            (delay, fail.then_some(lost))
        };
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        match fail {
            None => Ok(()),
            Some(lost) => Err(Error::Unavailable {
                reason: if lost {
                    format!("{method}: injected fault: the connection to the store is lost")
                } else {
                    format!("{method}: injected fault")
                },
                source: None,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::CountingStore;

    use super::super::tests::EmptyStore;

    fn faulty() -> FaultyStore<CountingStore<EmptyStore>> {
        FaultyStore::new(Arc::new(CountingStore::new(Arc::new(EmptyStore))))
    }

    /// Whether each of `calls` calls reached the wrapped store (which answers every call
    /// with `NotFound`) rather than failing with an injected fault.
    async fn outcomes(store: &FaultyStore<CountingStore<EmptyStore>>, calls: usize) -> Vec<bool> {
        let mut out = Vec::new();
        for _ in 0..calls {
            match crate::store::ExecutionStore::release_node_leases(store, "n").await {
                Err(Error::NotFound { .. }) => out.push(true),
                Err(Error::Unavailable { .. }) => out.push(false),
                other => panic!("unexpected answer {other:?}"),
            }
        }
        out
    }

    #[tokio::test]
    async fn the_nth_call_from_now_fails_and_the_others_go_through() {
        let store = faulty();
        assert_eq!(outcomes(&store, 2).await, [true, true]);
        store.fail_call(StoreMethod::ReleaseNodeLeases, 2);
        assert_eq!(outcomes(&store, 3).await, [true, false, true]);
        assert_eq!(store.injected_failures(), 1);
        // The failed call never reached the wrapped store.
        assert_eq!(store.inner().calls(StoreMethod::ReleaseNodeLeases), 4);
    }

    #[tokio::test]
    async fn a_range_of_calls_fails_and_an_open_range_fails_until_cleared() {
        let store = faulty();
        store.fail_calls(StoreMethod::ReleaseNodeLeases, 2..4);
        assert_eq!(outcomes(&store, 4).await, [true, false, false, true]);
        store.fail_calls(StoreMethod::ReleaseNodeLeases, ..);
        assert_eq!(outcomes(&store, 2).await, [false, false]);
        store.clear();
        assert_eq!(outcomes(&store, 1).await, [true]);
    }

    #[tokio::test]
    async fn faults_of_another_method_do_not_apply() {
        let store = faulty();
        store.fail_calls(StoreMethod::AppendOutput, 1..);
        assert_eq!(outcomes(&store, 2).await, [true, true]);
        assert_eq!(store.injected_failures(), 0);
    }

    #[tokio::test]
    async fn a_lost_connection_fails_every_call_from_its_call_until_restored() {
        let store = faulty();
        store.lose_connection_from_call(3);
        assert!(!store.is_connection_lost());
        assert_eq!(outcomes(&store, 4).await, [true, true, false, false]);
        assert!(store.is_connection_lost());
        let err = crate::store::IdentityStore::list_teams(&store, &crate::store::TeamScope::All)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::Unavailable { reason, .. } if reason.contains("list_teams") && reason.contains("connection")),
            "{err}"
        );
        store.restore();
        assert_eq!(outcomes(&store, 1).await, [true]);
        assert_eq!(store.injected_failures(), 3);
    }

    #[tokio::test]
    async fn delayed_calls_wait_and_then_go_through() {
        let store = faulty();
        let by = Duration::from_millis(300);
        store.delay_calls(StoreMethod::ReleaseNodeLeases, 1..=1, by);
        let started = std::time::Instant::now();
        assert_eq!(outcomes(&store, 1).await, [true]);
        assert!(started.elapsed() >= by);
        let started = std::time::Instant::now();
        assert_eq!(outcomes(&store, 1).await, [true]);
        assert!(started.elapsed() < by, "only the first call was delayed");
    }
}
