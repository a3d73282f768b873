//! [`Hold`]: requests kept at a stand-in until the test releases them.

use std::sync::Arc;

use tokio::sync::{Semaphore, watch};

/// Requests held at the stand-in until the test releases them.
#[derive(Debug)]
pub(crate) struct HoldState {
    pub(crate) expected: usize,
    pub(crate) arrived: watch::Sender<usize>,
    pub(crate) release: Semaphore,
}

/// Requests held by [`MockServer::hold`](crate::MockServer::hold).
#[derive(Debug)]
pub struct Hold {
    pub(crate) state: Arc<HoldState>,
    pub(crate) watch: watch::Receiver<usize>,
}

impl Hold {
    /// Waits until every expected request has arrived and is being held.
    pub async fn all_arrived(&mut self) {
        let expected = self.state.expected;
        // The sender lives in `self.state`, so the channel cannot close under us.
        let _ = self.watch.wait_for(|arrived| *arrived >= expected).await;
    }

    /// Lets every held request (and any still to arrive for this hold) proceed.
    pub fn release(self) {
        self.state.release.add_permits(self.state.expected);
    }
}
