//! Single flight: concurrent misses of one key share one computation.
//!
//! moka's own coalescing (`try_get_with`) lives on its async cache, whose lookups are async
//! too; the hot path needs a synchronous lookup, so the coalescing is done here. The map only
//! holds keys with a computation in progress, so it is bounded by the requests in flight.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::OnceCell;

use super::Digest;

type Cell<T> = Arc<OnceCell<T>>;

/// Computations in progress, by key.
pub(crate) struct Flights<T> {
    map: Mutex<HashMap<Digest, Cell<T>>>,
}

impl<T: Clone> Flights<T> {
    pub(crate) fn new() -> Self {
        Flights {
            map: Mutex::new(HashMap::new()),
        }
    }

    /// Runs `init` unless a computation for `key` is already running, in which case its result
    /// is shared. If the leading caller is cancelled, a waiting caller takes over.
    pub(crate) async fn run<F>(&self, key: Digest, init: F) -> T
    where
        F: Future<Output = T>,
    {
        let cell = self
            .map
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(key)
            .or_default()
            .clone();
        let out = cell.get_or_init(|| init).await.clone();
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        if map.get(&key).is_some_and(|c| Arc::ptr_eq(c, &cell)) {
            map.remove(&key);
        }
        out
    }

    #[cfg(test)]
    pub(crate) fn in_flight(&self) -> usize {
        self.map
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_callers_share_one_computation() {
        let flights = Arc::new(Flights::<u32>::new());
        let calls = Arc::new(AtomicUsize::new(0));
        let barrier = Arc::new(tokio::sync::Barrier::new(16));
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let (f, c, b) = (flights.clone(), calls.clone(), barrier.clone());
            tasks.push(tokio::spawn(async move {
                b.wait().await;
                f.run([7; 16], async {
                    c.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    42
                })
                .await
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap(), 42);
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(flights.in_flight(), 0);
    }

    #[tokio::test]
    async fn a_cancelled_leader_hands_over() {
        let flights = Arc::new(Flights::<u32>::new());
        let f = flights.clone();
        let leader = tokio::spawn(async move {
            f.run([1; 16], async {
                tokio::time::sleep(Duration::from_secs(60)).await;
                1
            })
            .await
        });
        tokio::task::yield_now().await;
        let f = flights.clone();
        let waiter = tokio::spawn(async move { f.run([1; 16], async { 2 }).await });
        tokio::task::yield_now().await;
        leader.abort();
        assert_eq!(waiter.await.unwrap(), 2);
    }
}
