//! Which queues a worker process runs, and how many of each queue's jobs at once:
//! `UPLOAD_WORKER_QUEUES=scan:2,metadata,preview:1` (a queue without a count runs
//! `UPLOAD_WORKER_CONCURRENCY` jobs). Unset: every queue. Scan workers (with clamd
//! beside them) then scale apart from the rest.

use upload_domain::Queue;

use crate::ConfigError;

/// One queue a worker runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueRun {
    /// The queue.
    pub queue: Queue,
    /// Its jobs run at once.
    pub concurrency: usize,
}

const NAME: &str = "UPLOAD_WORKER_QUEUES";

/// Reads `value` (None: unset) with `default` as the count a queue without one
/// gets. Unknown queues, a queue named twice, a count of 0 and an empty list are
/// refused, naming the queues there are.
pub fn parse(value: Option<&str>, default: usize) -> Result<Vec<QueueRun>, ConfigError> {
    let Some(value) = value else {
        return Ok(Queue::ALL
            .iter()
            .map(|&queue| QueueRun {
                queue,
                concurrency: default,
            })
            .collect());
    };
    let invalid = |reason: String| ConfigError::Invalid {
        name: NAME,
        value: value.to_owned(),
        reason,
    };
    let known = || {
        Queue::ALL
            .iter()
            .map(|q| q.short_name())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut runs: Vec<QueueRun> = Vec::new();
    for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (word, count) = match entry.split_once(':') {
            Some((word, count)) => (word.trim(), Some(count.trim())),
            None => (entry, None),
        };
        let queue = Queue::named(word).map_err(|_| {
            invalid(format!(
                "{word:?} is not a queue; the queues are {}",
                known()
            ))
        })?;
        let concurrency = match count {
            None => default,
            Some(count) => match count.parse::<usize>() {
                Ok(n) if n > 0 => n,
                _ => {
                    return Err(invalid(format!(
                        "{word}'s count {count:?} is not a whole number above 0"
                    )));
                }
            },
        };
        if runs.iter().any(|r| r.queue == queue) {
            return Err(invalid(format!("{word} is named twice")));
        }
        runs.push(QueueRun { queue, concurrency });
    }
    if runs.is_empty() {
        return Err(invalid(format!(
            "name at least one queue; the queues are {}",
            known()
        )));
    }
    Ok(runs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(queue: Queue, concurrency: usize) -> QueueRun {
        QueueRun { queue, concurrency }
    }

    #[test]
    fn unset_runs_every_queue_at_the_default_count() {
        let all = parse(None, 4).expect("default");
        assert_eq!(all.len(), Queue::ALL.len());
        assert!(all.iter().all(|r| r.concurrency == 4));
    }

    #[test]
    fn a_list_names_queues_with_or_without_counts() {
        assert_eq!(
            parse(Some("scan:2, metadata ,preview:1"), 4).expect("list"),
            [
                run(Queue::Scan, 2),
                run(Queue::Metadata, 4),
                run(Queue::Preview, 1)
            ]
        );
        assert_eq!(
            parse(Some("item.move"), 3).expect("full name"),
            [run(Queue::Move, 3)]
        );
    }

    #[test]
    fn unknown_repeated_zero_and_empty_are_refused_with_the_reason() {
        for (value, says) in [
            (
                "scan,antivirus",
                "\"antivirus\" is not a queue; the queues are scan, metadata",
            ),
            ("scan,scan:2", "scan is named twice"),
            ("scan:0", "not a whole number above 0"),
            ("scan:two", "not a whole number above 0"),
            (" , ", "name at least one queue"),
        ] {
            let e = parse(Some(value), 4).expect_err(value).to_string();
            assert!(e.contains(says), "{value}: {e}");
            assert!(e.contains(NAME), "{e}");
        }
    }
}
