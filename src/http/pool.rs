//! ServicePoints: per scheme, host and port, the connections kept alive for reuse and the
//! connection limit, with a FIFO of the requests waiting for a connection.
//!
//! A request takes a `Lease` (a slot under the limit, with an idle connection when one is
//! there); it gives the connection back with `Lease::keep` once its response was read to the
//! end, or drops the lease, which closes the connection. Either frees the slot for the first
//! waiter. An idle connection is closed after MaxIdleTime on an engine timer.

use super::connection::{Connection, Endpoint};
use crate::engine::{self, Timer};
use parking_lot::Mutex;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, LazyLock, Weak};
use std::time::{Duration, Instant};

/// .NET Framework's ServicePointManager.DefaultConnectionLimit outside ASP.NET.
pub(crate) const DEFAULT_CONNECTION_LIMIT: usize = 2;
/// ServicePoint.MaxIdleTime's default (ServicePointManager.MaxServicePointIdleTime), ms.
pub(crate) const DEFAULT_MAX_IDLE_MS: u64 = 100_000;

type Waiter = Box<dyn FnOnce(Lease) + Send>;

struct Idle {
    conn: Arc<Connection>,
    timer: Option<Timer>,
}

struct State {
    idle: Vec<Idle>,
    /// Leases out (connections in use, or being opened).
    active: usize,
    limit: usize,
    max_idle: Duration,
    waiters: VecDeque<Waiter>,
    /// Connections opened so far (for tests and the README's pool figures).
    opened: u64,
}

pub struct ServicePoint {
    me: Weak<ServicePoint>,
    pub endpoint: Endpoint,
    state: Mutex<State>,
}

static POINTS: LazyLock<Mutex<HashMap<Endpoint, Arc<ServicePoint>>>> = LazyLock::new(Mutex::default);

/// ServicePointManager.FindServicePoint.
pub fn service_point(endpoint: &Endpoint) -> Arc<ServicePoint> {
    POINTS
        .lock()
        .entry(endpoint.clone())
        .or_insert_with(|| {
            Arc::new_cyclic(|me| ServicePoint {
                me: me.clone(),
                endpoint: endpoint.clone(),
                state: Mutex::new(State {
                    idle: Vec::new(),
                    active: 0,
                    limit: DEFAULT_CONNECTION_LIMIT,
                    max_idle: Duration::from_millis(DEFAULT_MAX_IDLE_MS),
                    waiters: VecDeque::new(),
                    opened: 0,
                }),
            })
        })
        .clone()
}

/// A slot under the connection limit, with the connection it uses (None: open a new one).
pub struct Lease {
    sp: Arc<ServicePoint>,
    pub conn: Option<Arc<Connection>>,
    /// The connection came from the idle list (a failure before any response byte may be the
    /// server having closed it meanwhile: the request is retried on a new one).
    pub reused: bool,
    released: bool,
}

impl Lease {
    /// Gives the connection back for reuse and frees the slot.
    pub fn keep(mut self) {
        self.released = true;
        let conn = self.conn.take();
        self.sp.release(conn);
    }

    /// Records a connection just opened for this lease.
    pub fn opened(&mut self, conn: Arc<Connection>) {
        self.sp.state.lock().opened += 1;
        self.conn = Some(conn);
        self.reused = false;
    }

    pub fn service_point(&self) -> &Arc<ServicePoint> {
        &self.sp
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if self.released {
            return;
        }
        if let Some(c) = self.conn.take() {
            c.close();
        }
        self.sp.release(None);
    }
}

impl ServicePoint {
    fn arc(&self) -> Arc<ServicePoint> {
        self.me.upgrade().expect("a ServicePoint in use is alive")
    }

    /// ServicePoint.ConnectionLimit (at least 1).
    pub fn set_connection_limit(&self, limit: usize) {
        let grants = {
            let mut st = self.state.lock();
            st.limit = limit.max(1);
            self.grant_waiters(&mut st)
        };
        self.run(grants);
    }

    pub fn connection_limit(&self) -> usize {
        self.state.lock().limit
    }

    /// ServicePoint.MaxIdleTime.
    pub fn set_max_idle(&self, ms: u64) {
        self.state.lock().max_idle = Duration::from_millis(ms);
    }

    /// Connections opened to this endpoint so far, and those idle now.
    pub fn counts(&self) -> (u64, usize) {
        let st = self.state.lock();
        (st.opened, st.idle.len())
    }

    /// Takes a slot: `then` runs now when one is free, else once an earlier lease is done (on
    /// the thread that ends it). Waiters are served in order.
    pub fn acquire(&self, then: impl FnOnce(Lease) + Send + 'static) {
        let lease = {
            let mut st = self.state.lock();
            if st.waiters.is_empty() && (st.active < st.limit || !st.idle.is_empty()) {
                Some(self.take(&mut st))
            } else {
                st.waiters.push_back(Box::new(then));
                return;
            }
        };
        if let Some(l) = lease {
            then(l)
        }
    }

    fn take(&self, st: &mut State) -> Lease {
        st.active += 1;
        let idle = st.idle.pop();
        let reused = idle.is_some();
        let conn = idle.map(|i| {
            if let Some(t) = i.timer {
                t.cancel();
            }
            i.conn
        });
        Lease { sp: self.arc(), conn, reused, released: false }
    }

    fn grant_waiters(&self, st: &mut State) -> Vec<(Waiter, Lease)> {
        let mut grants = Vec::new();
        while !st.waiters.is_empty() && (st.active < st.limit || !st.idle.is_empty()) {
            let w = st.waiters.pop_front().expect("a waiter");
            grants.push((w, self.take(st)));
        }
        grants
    }

    fn run(&self, grants: Vec<(Waiter, Lease)>) {
        for (w, lease) in grants {
            w(lease)
        }
    }

    fn release(&self, conn: Option<Arc<Connection>>) {
        let grants = {
            let mut st = self.state.lock();
            st.active -= 1;
            if let Some(conn) = conn {
                let timer = self.idle_timer(&conn, st.max_idle);
                st.idle.push(Idle { conn, timer });
            }
            self.grant_waiters(&mut st)
        };
        self.run(grants);
    }

    fn idle_timer(&self, conn: &Arc<Connection>, after: Duration) -> Option<Timer> {
        let (me, id) = (self.me.clone(), conn.id);
        let expire = Box::new(move || {
            let Some(sp) = me.upgrade() else { return };
            let gone = {
                let mut st = sp.state.lock();
                st.idle.iter().position(|i| i.conn.id == id).map(|at| st.idle.remove(at))
            };
            if let Some(i) = gone {
                i.conn.close();
            }
        });
        engine::add_timer(Instant::now() + after, expire).ok()
    }
}
