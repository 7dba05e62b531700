//! Batch calls (`PutEvents`, `SendMessageBatch`): requests split by count and by bytes, and the
//! entries a call reports failed sent again, a few times, with backoff.

use std::future::Future;
use std::ops::Range;
use std::time::Duration;

/// Sends per call, the first included: a partial failure is usually throttling or an internal
/// failure that a moment later passes.
const ATTEMPTS: u32 = 3;
const FIRST_BACKOFF: Duration = Duration::from_millis(100);

/// Consecutive runs of entries, by their sizes, that each fit one request: at most `entries`
/// entries and at most `bytes` in all. An entry over `bytes` by itself goes alone, so the
/// service refuses only it.
pub fn split(sizes: &[usize], entries: usize, bytes: usize) -> Vec<Range<usize>> {
    let mut runs = Vec::new();
    let (mut start, mut total) = (0, 0);
    for (i, &size) in sizes.iter().enumerate() {
        if i > start && (i - start == entries || total + size > bytes) {
            runs.push(start..i);
            (start, total) = (i, 0);
        }
        total += size;
    }
    if start < sizes.len() {
        runs.push(start..sizes.len());
    }
    runs
}

/// Sends the entries `0..count` with `send` (which returns those of the ones it was given that
/// failed), then only the failed ones again, up to [`ATTEMPTS`] sends with doubling backoff.
/// Returns the entries that still failed: the caller reports them, never drops them.
pub async fn with_retries<F, Fut>(count: usize, mut send: F) -> Vec<usize>
where
    F: FnMut(Vec<usize>) -> Fut,
    Fut: Future<Output = Vec<usize>>,
{
    let mut pending: Vec<usize> = (0..count).collect();
    let mut backoff = FIRST_BACKOFF;
    for attempt in 1..=ATTEMPTS {
        pending = send(pending).await;
        if pending.is_empty() || attempt == ATTEMPTS {
            break;
        }
        tokio::time::sleep(backoff).await;
        backoff *= 2;
    }
    pending
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[test]
    fn when_entries_are_many_or_large_then_each_run_keeps_both_limits() {
        assert_eq!(split(&[1; 25], 10, 100), [0..10, 10..20, 20..25]);
        assert_eq!(split(&[40, 40, 40, 40], 10, 100), [0..2, 2..4]);
        // One entry alone over the limit goes by itself.
        assert_eq!(split(&[10, 500, 10], 10, 100), [0..1, 1..2, 2..3]);
        assert!(split(&[], 10, 100).is_empty());
    }

    #[test]
    fn when_sizes_are_generated_then_every_entry_is_in_one_run_and_runs_keep_the_limits() {
        let mut state = 7_u64;
        for _ in 0..500 {
            let sizes: Vec<usize> = (0..(state % 60) as usize)
                .map(|_| {
                    state = state
                        .wrapping_mul(6_364_136_223_846_793_005)
                        .wrapping_add(1_442_695_040_888_963_407);
                    (state >> 33) as usize % 120_000
                })
                .collect();
            let runs = split(&sizes, 10, 262_144);
            let covered: Vec<usize> = runs.iter().flat_map(Clone::clone).collect();
            assert_eq!(covered, (0..sizes.len()).collect::<Vec<_>>());
            for run in runs {
                assert!(run.len() <= 10);
                let bytes: usize = sizes[run.clone()].iter().sum();
                assert!(bytes <= 262_144 || run.len() == 1, "{run:?}: {bytes}");
            }
        }
    }

    #[tokio::test]
    async fn when_some_entries_fail_then_only_those_are_sent_again_and_the_rest_reported() {
        let sent = Mutex::new(Vec::new());
        let unsent = with_retries(5, |entries: Vec<usize>| {
            sent.lock().unwrap().push(entries.clone());
            // Entry 1 fails once, entry 3 every time.
            let failing = if sent.lock().unwrap().len() == 1 {
                vec![1, 3]
            } else {
                vec![3]
            };
            async move { entries.into_iter().filter(|e| failing.contains(e)).collect() }
        })
        .await;
        assert_eq!(unsent, [3]);
        assert_eq!(*sent.lock().unwrap(), [vec![0, 1, 2, 3, 4], vec![1, 3], vec![3]]);
    }
}
