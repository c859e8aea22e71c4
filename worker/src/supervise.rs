//! Keeps a queue's worker running: a worker that stops (its database went away,
//! its backend failed) is started again after a delay that doubles up to 10 s —
//! at once when the database, seen away, answers again — under a fresh name, so
//! that its abandoned jobs are re-queued once the old name misses its heartbeats.
//! A queue that keeps failing for `give_up_after` ends the process with an error,
//! for its service manager to restart it.

use std::pin::Pin;
use std::time::Duration;

use tokio::time::Instant;

use futures::future::Shared;
use upload_db::jobs::Queue;

/// The shutdown signal, shared by every queue.
pub(crate) type Signal = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The first delay before a restart.
const FIRST_DELAY: Duration = Duration::from_secs(1);
/// The longest delay between restarts.
const MAX_DELAY: Duration = Duration::from_secs(10);
/// How often the database is tried while a restart waits.
const PROBE_EVERY: Duration = Duration::from_millis(500);
/// A worker that ran this long before failing counts as recovered: delays start over.
const HEALTHY_RUN: Duration = Duration::from_secs(60);

/// Runs `run_once(restarts)` until `shutdown` resolves; restarts it whenever it
/// ends before that, after an error, a panic, or on its own.
pub(crate) async fn supervise<F, Fut, P, PF>(
    queue: Queue,
    give_up_after: Duration,
    shutdown: Shared<Signal>,
    mut run_once: F,
    database_answers: P,
) -> anyhow::Result<()>
where
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = Result<(), apalis::prelude::WorkerError>> + Send + 'static,
    P: Fn() -> PF,
    PF: Future<Output = bool>,
{
    let mut delay = FIRST_DELAY;
    let mut failing_since: Option<Instant> = None;
    for restarts in 0.. {
        let started = Instant::now();
        // Its own task: a panic inside a job ends this run, not the supervisor.
        let outcome = tokio::spawn(run_once(restarts)).await;
        if shutdown.peek().is_some() {
            return Ok(());
        }
        // A worker ends without an error when its backend's stream ends (a failed
        // fetch marks it dead): outside a shutdown that is a failure too.
        let error = match outcome {
            Ok(Ok(())) => "it stopped on its own".to_owned(),
            Ok(Err(e)) => format!("{e}"),
            Err(e) => format!("panicked: {e}"),
        };
        if started.elapsed() >= HEALTHY_RUN {
            failing_since = None;
            delay = FIRST_DELAY;
        }
        let since = *failing_since.get_or_insert(started);
        if since.elapsed() >= give_up_after {
            anyhow::bail!(
                "the {} worker kept failing for {:?}: {error}",
                queue.name(),
                since.elapsed()
            );
        }
        tracing::warn!(queue = queue.name(), restarts, ?delay, %error, "queue worker stopped; restarting it");
        tokio::select! {
            () = wait_for_restart(delay, &database_answers) => {}
            () = shutdown.clone() => return Ok(()),
        }
        delay = (delay * 2).min(MAX_DELAY);
    }
    Ok(())
}

/// True when a connection to the database at `url` opens within a second.
pub(crate) async fn database_answers(url: String) -> bool {
    use sqlx::Connection;
    matches!(
        tokio::time::timeout(Duration::from_secs(1), sqlx::PgConnection::connect(&url)).await,
        Ok(Ok(_))
    )
}

/// Waits `delay`, or less: once the database has been seen away and then answers
/// again, a restart need not wait any longer.
async fn wait_for_restart<P, PF>(delay: Duration, database_answers: &P)
where
    P: Fn() -> PF,
    PF: Future<Output = bool>,
{
    let until = Instant::now() + delay;
    let mut seen_away = false;
    while Instant::now() < until {
        let up = database_answers().await;
        if seen_away && up {
            return;
        }
        seen_away |= !up;
        tokio::time::sleep_until((Instant::now() + PROBE_EVERY).min(until)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn never() -> Shared<Signal> {
        futures::FutureExt::shared(Box::pin(std::future::pending()) as Signal)
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_worker_is_restarted_with_growing_delays_then_given_up() {
        let runs = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&runs);
        let started = tokio::time::Instant::now();
        let result = supervise(
            Queue::Scan,
            Duration::from_secs(100),
            never(),
            move |_| {
                counted.fetch_add(1, Ordering::SeqCst);
                async {
                    Err(apalis::prelude::WorkerError::IoError(
                        std::io::Error::other("database gone"),
                    ))
                }
            },
            || async { true },
        )
        .await;
        let err = result.expect_err("given up").to_string();
        assert!(
            err.contains("upload.scan") && err.contains("database gone"),
            "{err}"
        );
        // Delays 1, 2, 4, 8, 10, 10, ... seconds: about thirteen runs in 100 s.
        let n = runs.load(Ordering::SeqCst);
        assert!((12..=15).contains(&n), "{n} runs");
        assert!(started.elapsed() >= Duration::from_secs(100));
    }

    #[tokio::test(start_paused = true)]
    async fn a_worker_that_stops_on_its_own_is_restarted_until_shutdown() {
        let runs = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&runs);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let shutdown = futures::FutureExt::shared(Box::pin(async move {
            let _ = stopped.await;
        }) as Signal);
        let mut stop = Some(stop);
        let run_once = move |_| {
            let n = counted.fetch_add(1, Ordering::SeqCst);
            if n == 3 {
                // The fourth run is the one a shutdown ends.
                let _ = stop.take().map(|s| s.send(()));
            }
            async move {
                if n < 2 {
                    Err(apalis::prelude::WorkerError::IoError(
                        std::io::Error::other("connection reset"),
                    ))
                } else {
                    // Its backend's stream ended: no error, but not a shutdown.
                    Ok(())
                }
            }
        };
        let result = supervise(
            Queue::Move,
            Duration::from_secs(100),
            shutdown,
            run_once,
            || async { true },
        )
        .await;
        assert!(result.is_ok());
        assert_eq!(runs.load(Ordering::SeqCst), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn a_database_back_after_an_outage_cuts_the_wait_short() {
        let probes = std::sync::Mutex::new(vec![true, false, false]);
        let started = Instant::now();
        wait_for_restart(Duration::from_secs(10), &|| {
            let up = probes.lock().unwrap().pop().unwrap_or(true);
            async move { up }
        })
        .await;
        // Away twice, back on the third probe: about a second, not ten.
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        let started = Instant::now();
        wait_for_restart(Duration::from_secs(10), &|| async { true }).await;
        assert!(
            started.elapsed() >= Duration::from_secs(10),
            "never away: the whole delay"
        );
    }
}
