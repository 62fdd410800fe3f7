//! The blocking pool: a few threads for calls that cannot be made non-blocking (getaddrinfo).
//! Threads start on demand, up to `MAX_THREADS`, and live until the runtime shuts down.

use super::Task;
use crate::error::{Error, Result};
use parking_lot::{Condvar, Mutex};
use std::collections::VecDeque;
use std::sync::Arc;
use std::thread::JoinHandle;

const MAX_THREADS: usize = 4;

struct State {
    queue: VecDeque<Task>,
    idle: usize,
    stopping: bool,
    threads: Vec<JoinHandle<()>>,
}

pub struct Pool {
    state: Mutex<State>,
    work: Condvar,
}

impl Pool {
    pub fn new() -> Arc<Pool> {
        Arc::new(Pool {
            state: Mutex::new(State { queue: VecDeque::new(), idle: 0, stopping: false, threads: Vec::new() }),
            work: Condvar::new(),
        })
    }

    pub fn spawn(self: &Arc<Self>, task: Task) -> Result<()> {
        let mut st = self.state.lock();
        if st.stopping {
            return Err(Error::aborted());
        }
        st.queue.push_back(task);
        if st.idle == 0 && st.threads.len() < MAX_THREADS {
            let pool = self.clone();
            let t = std::thread::Builder::new()
                .name("apmnet-blocking".into())
                .spawn(move || pool.work_loop())
                .map_err(|e| Error::internal(format!("cannot start a blocking-pool thread: {e}")))?;
            st.threads.push(t);
        } else {
            self.work.notify_one();
        }
        Ok(())
    }

    fn work_loop(&self) {
        super::signals::enter_engine_thread();
        let mut st = self.state.lock();
        loop {
            if let Some(task) = st.queue.pop_front() {
                drop(st);
                if std::panic::catch_unwind(std::panic::AssertUnwindSafe(task)).is_err() {
                    eprintln!("apmnet: a blocking-pool task panicked");
                }
                st = self.state.lock();
            } else if st.stopping {
                return;
            } else {
                st.idle += 1;
                self.work.wait(&mut st);
                st.idle -= 1;
            }
        }
    }

    /// Lets queued work finish, then makes the threads exit.
    pub fn stop(&self) {
        self.state.lock().stopping = true;
        self.work.notify_all();
    }

    pub fn join(&self) {
        let threads = std::mem::take(&mut self.state.lock().threads);
        for t in threads {
            let _ = t.join();
        }
    }
}
