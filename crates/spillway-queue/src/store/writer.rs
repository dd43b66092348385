//! Group commit: one thread owns every write. Callers hand it their mutations and wait; the
//! thread takes everything that queued up while the previous commit was being fsync'd and
//! commits it in one transaction, so 32 concurrent senders cost about one fsync per round,
//! not 32. Each caller is answered only after the commit that holds its mutations returned.

use std::sync::{Arc, Mutex, mpsc};

use tokio::sync::oneshot;

use super::{Mutation, Store, StoreError};

/// Mutations committed in one transaction at most (keeps one commit's memory bounded).
const MAX_MUTATIONS_PER_COMMIT: usize = 8192;

struct Request {
    mutations: Vec<Mutation>,
    done: oneshot::Sender<Result<(), Arc<StoreError>>>,
}

/// Hands out message sequences and passes mutations to the writer thread in the same order,
/// so that sequences commit in increasing order (FIFO relies on it).
pub struct Writer {
    ordered: Mutex<Ordered>,
}

struct Ordered {
    next_seq: u64,
    to_thread: mpsc::Sender<Request>,
}

/// Allocates sequences while a submission is being built.
pub struct Sequences<'a> {
    next: &'a mut u64,
}

impl Sequences<'_> {
    pub fn allocate(&mut self) -> u64 {
        let seq = *self.next;
        *self.next += 1;
        seq
    }
}

impl Writer {
    /// Starts the writer thread. Sequences continue after `max_seq`.
    pub fn start(store: Arc<dyn Store>, max_seq: u64) -> Result<Writer, StoreError> {
        let (to_thread, from_callers) = mpsc::channel::<Request>();
        std::thread::Builder::new()
            .name("spillway-queue-writer".into())
            .spawn(move || run(store, from_callers))
            .map_err(StoreError::new)?;
        Ok(Writer {
            ordered: Mutex::new(Ordered {
                next_seq: max_seq + 1,
                to_thread,
            }),
        })
    }

    /// Builds mutations with fresh sequences and queues them for the next commit; the
    /// returned future resolves once they are durable.
    pub fn submit<T>(
        &self,
        build: impl FnOnce(&mut Sequences<'_>) -> (Vec<Mutation>, T),
    ) -> (T, Pending) {
        let (done, answer) = oneshot::channel();
        let value = {
            // A poisoned lock only means another caller panicked while building; the state
            // (a counter and a sender) is still sound.
            let mut ordered = self.ordered.lock().unwrap_or_else(|p| p.into_inner());
            let ordered = &mut *ordered;
            let (mutations, value) = build(&mut Sequences {
                next: &mut ordered.next_seq,
            });
            if mutations.is_empty() {
                let _ = done.send(Ok(()));
            } else if let Err(mpsc::SendError(request)) =
                ordered.to_thread.send(Request { mutations, done })
            {
                let _ = request
                    .done
                    .send(Err(Arc::new(StoreError::new("the queue writer stopped"))));
            }
            value
        };
        (value, Pending { answer })
    }

    /// Commits mutations that need no sequences.
    pub async fn commit(&self, mutations: Vec<Mutation>) -> Result<(), StoreError> {
        let ((), pending) = self.submit(|_| (mutations, ()));
        pending.wait().await
    }
}

/// A submission on its way to a commit.
pub struct Pending {
    answer: oneshot::Receiver<Result<(), Arc<StoreError>>>,
}

impl Pending {
    /// Resolves once the commit holding the submission returned.
    pub async fn wait(self) -> Result<(), StoreError> {
        match self.answer.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(StoreError(e.0.clone())),
            Err(_) => Err(StoreError::new("the queue writer stopped")),
        }
    }
}

fn run(store: Arc<dyn Store>, from_callers: mpsc::Receiver<Request>) {
    // Ends when every Writer (and so every sender) is dropped.
    while let Ok(first) = from_callers.recv() {
        let mut batch = vec![first];
        let mut count = batch[0].mutations.len();
        while count < MAX_MUTATIONS_PER_COMMIT {
            match from_callers.try_recv() {
                Ok(request) => {
                    count += request.mutations.len();
                    batch.push(request);
                }
                Err(_) => break,
            }
        }
        let mutations: Vec<Mutation> = batch
            .iter_mut()
            .flat_map(|r| std::mem::take(&mut r.mutations))
            .collect();
        let result = store.apply(&mutations).map_err(Arc::new);
        if let Err(error) = &result {
            tracing::error!(%error, mutations = mutations.len(), "queue commit failed");
        }
        for request in batch {
            let _ = request.done.send(result.clone());
        }
    }
}
