//! Where evidence is verified: one thread per core, taking the next file from a shared queue the
//! moment the last one is done.
//!
//! Verification is CPU-bound (a 12-MP JPEG is ~45 ms of decoding), so at most one file per core
//! is worked on at a time, off the async threads, and uploads queue instead of starving request
//! handling or memory. The threads pull their work themselves: with a semaphore and tokio's
//! blocking pool before, a finished verification freed its slot only when the request's task
//! was polled again on its HTTP worker, and the next waiting request started only when its own
//! worker got to it (both workers busy streaming other uploads to disk meanwhile); the blocking
//! pool's threads also came and went. Same photos and machine, A/B: ~2 % more photos/s, ~45 MiB
//! less peak memory. A rayon pool was tried in place of these few lines: its idle threads look
//! for work a while before sleeping (one run spent 61 ms of server CPU per photo against 56–59),
//! and jpeg-decoder, which uses rayon itself, would spread one photo over the pool's threads.

use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

type Job = Box<dyn FnOnce() + Send>;

/// On `/metrics`: how long a file waited for a verification thread. Waits that grow mean the
/// uploads arrive faster than the cores verify them: time for another instance.
pub const WAIT_METRIC: &str = "fieldproof_verification_wait_seconds";
/// On `/metrics`: how long verifying a file took on its thread.
pub const RUN_METRIC: &str = "fieldproof_verification_seconds";

/// A fixed set of verification threads fed by one queue. Cheap to clone; clones share the
/// threads, which end when the last clone is dropped.
#[derive(Clone)]
pub struct Verifier {
    jobs: Sender<Job>,
}

impl Verifier {
    /// `threads` verification threads (at least one).
    pub fn start(threads: usize) -> std::io::Result<Verifier> {
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..threads.max(1) {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("verify-{i}"))
                .spawn(move || work(&queue))?;
        }
        Ok(Verifier { jobs })
    }

    /// One verification thread per core.
    pub fn per_core() -> std::io::Result<Verifier> {
        Verifier::start(
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2),
        )
    }

    /// Run `f` on a verification thread once one is free (in the order asked) and wait for its
    /// result. A panic in `f` is an error here; the thread goes on with the next file.
    pub async fn run<T, F>(&self, f: F) -> anyhow::Result<T>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let (done, result) = tokio::sync::oneshot::channel();
        let queued = Instant::now();
        self.jobs
            .send(Box::new(move || {
                // A requester that went away while this waited (a phone on 4G giving up and
                // retrying) costs no verification; one that goes during it gets no answer.
                if !done.is_closed() {
                    let started = Instant::now();
                    metrics::histogram!(WAIT_METRIC).record((started - queued).as_secs_f64());
                    let answer = f();
                    metrics::histogram!(RUN_METRIC).record(started.elapsed().as_secs_f64());
                    let _ = done.send(answer);
                }
            }))
            .map_err(|_| anyhow::anyhow!("the verification threads have stopped"))?;
        result
            .await
            .map_err(|_| anyhow::anyhow!("the verification of this file panicked"))
    }
}

fn work(queue: &Mutex<Receiver<Job>>) {
    loop {
        // The lock is held while waiting: the threads take turns at the queue, one job each.
        let job = match queue.lock().unwrap_or_else(PoisonError::into_inner).recv() {
            Ok(job) => job,
            // Every sender dropped: the server is shutting down.
            Err(_) => return,
        };
        // A panicking job drops its answer channel unanswered: its requester gets an error.
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)).is_err() {
            tracing::error!("a verification panicked; its upload gets an error");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn results_come_back_to_whoever_asked_and_a_panic_is_an_error() {
        let verifier = Verifier::start(2).unwrap();
        let asks = (0..20u64).map(|i| {
            let verifier = verifier.clone();
            async move { verifier.run(move || i * i).await.unwrap() }
        });
        let got = futures_util::future::join_all(asks).await;
        assert_eq!(got, (0..20u64).map(|i| i * i).collect::<Vec<_>>());

        let failed = verifier.run(|| -> u64 { panic!("a corrupt file") }).await;
        assert!(failed.is_err());
        // Both threads are still there.
        let after = futures_util::future::join_all((0..4u64).map(|i| verifier.run(move || i + 1)))
            .await
            .into_iter()
            .map(|r| r.unwrap())
            .collect::<Vec<_>>();
        assert_eq!(after, vec![1, 2, 3, 4]);
    }

    #[tokio::test]
    async fn a_file_whose_requester_has_gone_is_not_verified() {
        use futures_util::FutureExt;
        use std::sync::atomic::{AtomicBool, Ordering};
        let verifier = Verifier::start(1).unwrap();
        // The one thread is busy until told to go on.
        let (go, wait) = std::sync::mpsc::channel::<()>();
        let (started, has_started) = std::sync::mpsc::channel::<()>();
        let busy = {
            let verifier = verifier.clone();
            tokio::spawn(async move {
                verifier
                    .run(move || {
                        let _ = started.send(());
                        wait.recv().is_ok()
                    })
                    .await
            })
        };
        while has_started.try_recv().is_err() {
            tokio::task::yield_now().await;
        }
        let ran = Arc::new(AtomicBool::new(false));
        let flag = ran.clone();
        // Queued, then the requester gives up (the future dropped after its first poll).
        assert!(
            verifier
                .run(move || flag.store(true, Ordering::SeqCst))
                .now_or_never()
                .is_none()
        );
        go.send(()).unwrap();
        assert!(busy.await.unwrap().unwrap());
        // The queue is served in order: once this one is answered, the abandoned one is done.
        verifier.run(|| ()).await.unwrap();
        assert!(!ran.load(Ordering::SeqCst));
    }

    #[tokio::test]
    async fn no_more_files_than_threads_are_verified_at_once() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let verifier = Verifier::start(2).unwrap();
        let (now, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let asks = (0..12).map(|_| {
            let (verifier, now, most) = (verifier.clone(), now.clone(), most.clone());
            async move {
                verifier
                    .run(move || {
                        let running = now.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(running, Ordering::SeqCst);
                        std::thread::sleep(std::time::Duration::from_millis(5));
                        now.fetch_sub(1, Ordering::SeqCst);
                    })
                    .await
                    .unwrap()
            }
        });
        futures_util::future::join_all(asks).await;
        assert_eq!(most.load(Ordering::SeqCst), 2);
    }
}
