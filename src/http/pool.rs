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

impl State {
    /// Nothing in use, idle or waiting, and no setting that differs from the defaults: nothing
    /// a later request would miss if the ServicePoint were made anew.
    fn is_unused(&self) -> bool {
        self.active == 0
            && self.idle.is_empty()
            && self.waiters.is_empty()
            && self.limit == DEFAULT_CONNECTION_LIMIT
            && self.max_idle == Duration::from_millis(DEFAULT_MAX_IDLE_MS)
    }
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
        let (grants, unused) = {
            let mut st = self.state.lock();
            st.active -= 1;
            if let Some(conn) = conn {
                let timer = self.idle_timer(&conn, st.max_idle);
                st.idle.push(Idle { conn, timer });
            }
            (self.grant_waiters(&mut st), st.is_unused())
        };
        if unused {
            self.forget();
        }
        self.run(grants);
    }

    /// Takes this ServicePoint out of the table once it holds nothing, as .NET's
    /// ServicePointManager lets idle ServicePoints go: the table stays as small as the endpoints
    /// (and TLS settings, which one per request are when each request has a validation callback
    /// state of its own) in use. A request that already holds it goes on with it; the next one
    /// makes a new ServicePoint.
    fn forget(&self) {
        let mut points = POINTS.lock();
        if points.get(&self.endpoint).is_some_and(|sp| std::ptr::eq(Arc::as_ptr(sp), self)) {
            // Checked again under the table's lock: a request may have taken it meanwhile.
            if self.state.lock().is_unused() {
                points.remove(&self.endpoint);
            }
        }
    }

    fn idle_timer(&self, conn: &Arc<Connection>, after: Duration) -> Option<Timer> {
        let (me, id) = (self.me.clone(), conn.id);
        let expire = Box::new(move || {
            let Some(sp) = me.upgrade() else { return };
            let (gone, unused) = {
                let mut st = sp.state.lock();
                let gone = st.idle.iter().position(|i| i.conn.id == id).map(|at| st.idle.remove(at));
                (gone, st.is_unused())
            };
            if let Some(i) = gone {
                i.conn.close();
            }
            if unused {
                sp.forget();
            }
        });
        engine::add_timer(Instant::now() + after, expire).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(host: &str) -> Endpoint {
        Endpoint { https: false, host: host.to_string(), port: 1, proxy: None, tls: Default::default() }
    }

    fn in_table(e: &Endpoint) -> bool {
        POINTS.lock().contains_key(e)
    }

    #[test]
    fn a_service_point_that_holds_nothing_leaves_the_table() {
        let e = endpoint("unused.pool.test");
        let sp = service_point(&e);
        assert!(in_table(&e));
        sp.acquire(drop); // a request that ends without a connection to keep
        assert!(!in_table(&e));
        // The next request makes a new one; a changed setting keeps it in the table.
        let sp = service_point(&e);
        sp.set_connection_limit(5);
        sp.acquire(drop);
        assert!(in_table(&e));
        assert_eq!(service_point(&e).connection_limit(), 5);
    }
}
