//! Cancel requests. Each client gets a BackendKeyData of the proxy's own making; while it holds a
//! server connection, its entry here points at that server's key, so a CancelRequest (which
//! arrives on a new connection) reaches the right backend, and a request for a client that holds
//! no server cancels nothing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::{BufMut, BytesMut};
use rand::Rng;
use tokio::io::AsyncWriteExt;

use crate::pg::startup::CANCEL_REQUEST;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerKey {
    pub addr: crate::pg::backend::ServerAddr,
    pub pid: i32,
    pub secret: i32,
}

/// The server a client is using right now, if any.
type Current = Arc<Mutex<Option<Arc<ServerKey>>>>;

#[derive(Default)]
pub struct CancelRegistry {
    clients: Mutex<HashMap<(i32, i32), Current>>,
}

/// A client's entry; removed from the registry when dropped.
pub struct CancelSlot {
    registry: Arc<CancelRegistry>,
    pub pid: i32,
    pub secret: i32,
    current: Current,
}

impl CancelSlot {
    pub fn set(&self, key: Option<Arc<ServerKey>>) {
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = key;
    }
}

impl Drop for CancelSlot {
    fn drop(&mut self) {
        self.registry
            .clients
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&(self.pid, self.secret));
    }
}

impl CancelRegistry {
    pub fn register(self: &Arc<Self>) -> CancelSlot {
        let mut rng = rand::thread_rng();
        let current = Arc::new(Mutex::new(None));
        let mut map = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            let (pid, secret) = (rng.gen_range(1..i32::MAX), rng.r#gen::<i32>());
            if let std::collections::hash_map::Entry::Vacant(e) = map.entry((pid, secret)) {
                e.insert(Arc::clone(&current));
                return CancelSlot {
                    registry: Arc::clone(self),
                    pid,
                    secret,
                    current,
                };
            }
        }
    }

    /// Forwards a cancel to the server the client currently uses; unknown keys are ignored, as
    /// PostgreSQL ignores them (the requester learns nothing either way).
    pub async fn cancel(&self, pid: i32, secret: i32) -> bool {
        let target = {
            let map = self.clients.lock().unwrap_or_else(|p| p.into_inner());
            map.get(&(pid, secret))
                .and_then(|c| c.lock().unwrap_or_else(|p| p.into_inner()).clone())
        };
        let Some(k) = target else { return false };
        let Ok(mut s) = k.addr.connect().await else {
            return false;
        };
        let mut out = BytesMut::with_capacity(16);
        out.put_i32(16);
        out.put_i32(CANCEL_REQUEST);
        out.put_i32(k.pid);
        out.put_i32(k.secret);
        s.write_all(&out).await.is_ok()
    }
}
