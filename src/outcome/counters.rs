//! The outcome counters of one classifier, for feature `metrics`.

use super::Outcome;

/// The outcome counters of one classifier (a `ClassifyLayer`, a token credential's), shared by
/// its clones: each `(provider, kind)` series is registered on its first count, with the
/// recorder installed then, and later counts are an atomic add (no label allocation, no
/// registry lookup on the request path).
#[derive(Clone, Default)]
pub(crate) struct OutcomeCounters {
    #[cfg(feature = "metrics")]
    counters: std::sync::Arc<[std::sync::OnceLock<metrics::Counter>; super::OutcomeKind::COUNT]>,
}

impl OutcomeCounters {
    #[inline]
    pub(crate) fn count(&self, provider: &'static str, outcome: &Outcome) {
        #[cfg(feature = "metrics")]
        {
            let kind = outcome.kind();
            self.counters[kind as usize]
                .get_or_init(|| {
                    let name = crate::metrics::CLIENT_OUTCOMES;
                    metrics::counter!(name, "provider" => provider, "kind" => kind.label())
                })
                .increment(1);
        }
        #[cfg(not(feature = "metrics"))]
        let _ = (provider, outcome);
    }
}
