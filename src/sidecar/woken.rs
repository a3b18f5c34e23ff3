//! [`OnWake`]: a future polled only when it asked to be.
//!
//! A connection task is woken for every request (its socket became readable or writable), and
//! everything it awaits beside the connection is polled again each time: the watchdog's timer
//! and notification, the shutdown signal. None of them is ready then; polling them cost ~900
//! instructions per request, 3-4 % of a cache-hit decision. Wrapped in [`OnWake`], such a
//! future is polled with a waker of its own, and polled again only once that waker fired.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};

use futures_util::task::AtomicWaker;
use pin_project_lite::pin_project;

/// Whether the inner future was woken, and the task to wake when it is.
#[derive(Debug, Default)]
struct Flag {
    woken: AtomicBool,
    task: AtomicWaker,
}

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        // Set before waking: the task's next poll must see it.
        self.woken.store(true, Ordering::Release);
        self.task.wake();
    }
}

pin_project! {
    /// Polls `F` on its first poll and afterwards only when `F` woke its waker; any other
    /// wake-up of the task that polls this is answered with `Pending` at the cost of one
    /// atomic swap and a waker check.
    #[derive(Debug)]
    #[must_use = "futures do nothing unless polled"]
    pub(super) struct OnWake<F> {
        #[pin]
        inner: F,
        flag: Arc<Flag>,
        waker: Waker,
    }
}

impl<F: Future> OnWake<F> {
    /// Wraps `inner`.
    pub(super) fn new(inner: F) -> Self {
        let flag = Arc::new(Flag {
            woken: AtomicBool::new(true),
            task: AtomicWaker::new(),
        });
        OnWake {
            inner,
            waker: Waker::from(flag.clone()),
            flag,
        }
    }
}

impl<F: Future> Future for OnWake<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        // Registered before the flag is read, so a wake-up between the two is not lost.
        this.flag.task.register(cx.waker());
        if !this.flag.woken.swap(false, Ordering::AcqRel) {
            return Poll::Pending;
        }
        this.inner.poll(&mut Context::from_waker(this.waker))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// Counts its polls; ready once `ready` is set, pending (and not waking) before.
    struct Probe {
        polls: Arc<AtomicUsize>,
        ready: Arc<AtomicBool>,
        waker: Arc<std::sync::Mutex<Option<Waker>>>,
    }

    impl Future for Probe {
        type Output = ();
        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            self.polls.fetch_add(1, Ordering::SeqCst);
            if self.ready.load(Ordering::SeqCst) {
                return Poll::Ready(());
            }
            *self.waker.lock().unwrap() = Some(cx.waker().clone());
            Poll::Pending
        }
    }

    #[derive(Default)]
    struct CountWake(AtomicUsize);
    impl Wake for CountWake {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// An [`OnWake`] around a [`Probe`], with the probe's poll count, readiness and waker.
    #[allow(clippy::type_complexity)]
    fn probe() -> (
        Pin<Box<OnWake<Probe>>>,
        Arc<AtomicUsize>,
        Arc<AtomicBool>,
        Arc<std::sync::Mutex<Option<Waker>>>,
    ) {
        let polls = Arc::new(AtomicUsize::new(0));
        let ready = Arc::new(AtomicBool::new(false));
        let waker = Arc::new(std::sync::Mutex::new(None::<Waker>));
        let fut = Box::pin(OnWake::new(Probe {
            polls: polls.clone(),
            ready: ready.clone(),
            waker: waker.clone(),
        }));
        (fut, polls, ready, waker)
    }

    #[test]
    fn the_inner_future_is_polled_only_after_it_woke() {
        let (mut fut, polls, ready, inner_waker) = probe();
        let task = Arc::new(CountWake::default());
        let task_waker = Waker::from(task.clone());
        let mut cx = Context::from_waker(&task_waker);

        assert!(fut.as_mut().poll(&mut cx).is_pending());
        assert_eq!(
            polls.load(Ordering::SeqCst),
            1,
            "the first poll reaches the inner future"
        );
        for _ in 0..5 {
            assert!(fut.as_mut().poll(&mut cx).is_pending());
        }
        assert_eq!(polls.load(Ordering::SeqCst), 1, "other wake-ups do not");
        assert_eq!(task.0.load(Ordering::SeqCst), 0);

        ready.store(true, Ordering::SeqCst);
        inner_waker.lock().unwrap().take().unwrap().wake();
        assert_eq!(
            task.0.load(Ordering::SeqCst),
            1,
            "the inner future's wake wakes the task"
        );
        assert!(fut.as_mut().poll(&mut cx).is_ready());
        assert_eq!(polls.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn a_wake_between_polls_with_a_new_task_waker_reaches_the_new_one() {
        let (mut fut, _, _, inner_waker) = probe();
        let (a, b) = (
            Arc::new(CountWake::default()),
            Arc::new(CountWake::default()),
        );
        let wa = Waker::from(a.clone());
        assert!(
            fut.as_mut()
                .poll(&mut Context::from_waker(&wa))
                .is_pending()
        );
        let wb = Waker::from(b.clone());
        assert!(
            fut.as_mut()
                .poll(&mut Context::from_waker(&wb))
                .is_pending()
        );
        inner_waker.lock().unwrap().take().unwrap().wake();
        assert_eq!(
            (a.0.load(Ordering::SeqCst), b.0.load(Ordering::SeqCst)),
            (0, 1)
        );
    }
}
