//! One event loop: an edge-triggered epoll set, its thread, a queue of posted tasks and its
//! timers (the earliest deadline bounds each wait).
//!
//! Each registered socket's epoll data is a pointer to its `IoCore`, kept alive by one strong
//! reference that the loop owns. Deregistering removes the fd from epoll first and releases that
//! reference from a task that runs after the current batch of events, so an event already fetched
//! by epoll_wait never points at freed memory.

use super::io_core::{Direction, IoCore};
use super::signals;
use super::timers::{self, TimerKey, Timers};
use super::Task;
use crate::error::{Error, Result};
use parking_lot::Mutex;
use std::collections::HashSet;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const WAKE_TOKEN: u64 = 0;

thread_local! {
    /// The loop whose thread this is, while its `run` is on the stack (which keeps it alive).
    static CURRENT: std::cell::Cell<*const EventLoop> = const { std::cell::Cell::new(std::ptr::null()) };
}

/// Only one loop spins at a time: on a small machine a second spinner would take the CPU that
/// the peer (or the application) needs, and one spinning loop already catches the quick answers.
static SPINNER: AtomicBool = AtomicBool::new(false);
const MAX_EVENTS: usize = 256;

struct Tasks {
    queue: Vec<Task>,
    /// The loop thread has exited: tasks run on the poster's thread.
    exited: bool,
}

pub struct EventLoop {
    epfd: RawFd,
    wake_fd: RawFd,
    tasks: Mutex<Tasks>,
    stopping: AtomicBool,
    /// Mirrors `Tasks::exited`, for the check on every submit without taking the lock.
    exited: AtomicBool,
    /// The IoCore pointers this loop holds a strong reference for.
    registered: Mutex<HashSet<usize>>,
    timers: Mutex<Timers>,
    spin: Duration,
}

impl EventLoop {
    pub fn new(spin: Duration) -> Result<Arc<EventLoop>> {
        // SAFETY: plain syscalls creating fds we own.
        unsafe {
            let epfd = libc::epoll_create1(libc::EPOLL_CLOEXEC);
            if epfd < 0 {
                return Err(Error::last_os());
            }
            let wake_fd = libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK);
            if wake_fd < 0 {
                let e = Error::last_os();
                libc::close(epfd);
                return Err(e);
            }
            let mut ev = libc::epoll_event { events: (libc::EPOLLIN | libc::EPOLLET) as u32, u64: WAKE_TOKEN };
            if libc::epoll_ctl(epfd, libc::EPOLL_CTL_ADD, wake_fd, &mut ev) < 0 {
                let e = Error::last_os();
                libc::close(wake_fd);
                libc::close(epfd);
                return Err(e);
            }
            Ok(Arc::new(EventLoop {
                epfd,
                wake_fd,
                tasks: Mutex::new(Tasks { queue: Vec::new(), exited: false }),
                stopping: AtomicBool::new(false),
                exited: AtomicBool::new(false),
                registered: Mutex::new(HashSet::new()),
                timers: Mutex::new(Timers::default()),
                spin,
            }))
        }
    }

    /// The loop whose thread this is.
    pub fn current() -> Option<Arc<EventLoop>> {
        let current = CURRENT.with(|c| c.get());
        // SAFETY: see below; a loop abandoned by a fork is no current loop.
        if current.is_null() || unsafe { &*current }.has_exited() {
            return None;
        }
        // SAFETY: the pointer is Arc::as_ptr of the Arc that `run` holds on this thread until it
        // clears CURRENT; taking one more strong reference to it is sound.
        unsafe {
            Arc::increment_strong_count(current);
            Some(Arc::from_raw(current))
        }
    }

    /// Posts `task` to the loop of the calling thread; hands it back off a loop thread (and on
    /// a loop abandoned by a fork).
    pub fn post_to_current(task: Task) -> Option<Task> {
        let current = CURRENT.with(|c| c.get());
        // SAFETY: as in `current`.
        if current.is_null() || unsafe { &*current }.has_exited() {
            return Some(task);
        }
        // SAFETY: set by `run` on this thread, which holds an Arc to the loop until it clears it.
        unsafe { &*current }.post(task);
        None
    }

    /// Runs `task` on this loop's thread (or here, if the loop has exited).
    pub fn post(&self, task: Task) {
        if self.has_exited() {
            task();
            return;
        }
        let mut tasks = self.tasks.lock();
        if tasks.exited {
            drop(tasks);
            task();
            return;
        }
        let was_empty = tasks.queue.is_empty();
        tasks.queue.push(task);
        drop(tasks);
        if was_empty {
            self.wake();
        }
    }

    /// Runs `task` on this loop's thread at `at` (or soon after), unless cancelled first.
    pub fn add_timer(&self, at: Instant, task: Task) -> TimerKey {
        let (key, earliest) = self.timers.lock().add(at, task);
        // A loop asleep until a later deadline must wake up to wait less.
        if earliest && !CURRENT.with(|c| std::ptr::eq(c.get(), self)) {
            self.wake();
        }
        key
    }

    /// Cancels a timer that has not fired; false when it has (or was cancelled already).
    pub fn cancel_timer(&self, key: TimerKey) -> bool {
        let task = self.timers.lock().cancel(key);
        task.is_some()
    }

    fn run_timers(&self) {
        let due = self.timers.lock().take_due(Instant::now());
        for task in due {
            guarded(task);
        }
    }

    fn wake(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a local to our eventfd; EAGAIN means it is already signalled.
        unsafe { libc::write(self.wake_fd, &one as *const u64 as *const libc::c_void, 8) };
    }

    /// Set by `stop`, before the loop aborts what is pending: an operation that sees it must not
    /// queue (the abort pass may already have run).
    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    pub fn has_exited(&self) -> bool {
        self.exited.load(Ordering::Acquire)
    }

    /// Adds `fd` to the epoll set on behalf of `core`, taking a strong reference to it.
    pub fn register(&self, core: &Arc<IoCore>, fd: RawFd) -> Result<()> {
        let ptr = Arc::into_raw(core.clone());
        if let Err(e) = self.epoll_add(fd, ptr) {
            // SAFETY: undoes the into_raw above.
            unsafe { drop(Arc::from_raw(ptr)) };
            return Err(e);
        }
        self.registered.lock().insert(ptr as usize);
        Ok(())
    }

    pub(super) fn epoll_add(&self, fd: RawFd, core: *const IoCore) -> Result<()> {
        let events = libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLET;
        let mut ev = libc::epoll_event { events: events as u32, u64: core as u64 };
        // SAFETY: adds an fd we own to our epoll set.
        if unsafe { libc::epoll_ctl(self.epfd, libc::EPOLL_CTL_ADD, fd, &mut ev) } < 0 {
            return Err(Error::last_os());
        }
        Ok(())
    }

    pub(super) fn epoll_del(&self, fd: RawFd) {
        let mut ev = libc::epoll_event { events: 0, u64: 0 };
        // SAFETY: removing an fd from our epoll set; failure (already gone) is harmless.
        unsafe { libc::epoll_ctl(self.epfd, libc::EPOLL_CTL_DEL, fd, &mut ev) };
    }

    /// Releases the loop's reference to `core` once events already fetched have been handled.
    /// The caller has removed the fd from the epoll set.
    pub(super) fn release(self: &Arc<Self>, core: *const IoCore) {
        let (lp, core) = (self.clone(), core as usize);
        self.post(Box::new(move || {
            if lp.registered.lock().remove(&core) {
                // SAFETY: the reference taken by `register`, released exactly once.
                unsafe { drop(Arc::from_raw(core as *const IoCore)) };
            }
        }));
    }

    /// Takes the locks a forked child will use (the forking thread, before fork; see `fork`).
    pub(super) fn lock_for_fork(&self) {
        std::mem::forget(self.registered.lock());
        std::mem::forget(self.tasks.lock());
        std::mem::forget(self.timers.lock());
    }

    /// Releases what `lock_for_fork` took.
    ///
    /// # Safety
    /// Only on the thread that called `lock_for_fork`, once after it.
    pub(super) unsafe fn unlock_after_fork(&self) {
        self.timers.force_unlock();
        self.tasks.force_unlock();
        self.registered.force_unlock();
    }

    /// In a forked child: closes the child's copies of this loop's fds (sockets, epoll, eventfd)
    /// without an epoll_ctl, so nothing reaches the parent's epoll set, and marks the loop exited.
    /// The loop and its sockets are leaked by the caller, never dropped.
    ///
    /// Its locks are still held by `lock_for_fork` (the child never releases them): the data is
    /// read through them, as the child's only thread is the one that holds them.
    pub(super) fn abandon_after_fork(&self) {
        // SAFETY: this thread holds the lock (taken before fork, never released in the child).
        let registered = unsafe { &*self.registered.data_ptr() };
        for &core in registered.iter() {
            // SAFETY: registered cores are kept alive by this loop's references, leaked with it.
            let core = unsafe { &*(core as *const IoCore) };
            core.abandon_after_fork();
        }
        // Posting to it runs tasks on the poster's thread (see `post`): never queued here again.
        self.exited.store(true, Ordering::Release);
        // SAFETY: the child's own copies of fds this loop created; the loop is never dropped
        // (its Drop would close them again).
        unsafe {
            libc::close(self.wake_fd);
            libc::close(self.epfd);
        }
    }

    /// Asks the loop to abort what is pending on its sockets and exit.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::Release);
        self.wake();
    }

    /// The loop body; runs on the loop's own thread.
    pub fn run(self: Arc<Self>) {
        signals::enter_engine_thread();
        CURRENT.with(|c| c.set(Arc::as_ptr(&self)));
        // SAFETY: epoll_event is plain data.
        let mut events: Vec<libc::epoll_event> = vec![unsafe { std::mem::zeroed() }; MAX_EVENTS];
        while !self.stopping.load(Ordering::Acquire) {
            let n = self.wait(&mut events);
            for ev in &events[..n] {
                let token = ev.u64;
                if token == WAKE_TOKEN {
                    self.drain_wake_fd();
                    continue;
                }
                // SAFETY: the pointer is registered, and the reference it stands for is released
                // only by a task, which runs after this batch.
                let core = unsafe { &*(token as *const IoCore) };
                let flags = ev.events as i32;
                if flags & (libc::EPOLLOUT | libc::EPOLLERR | libc::EPOLLHUP) != 0 {
                    guarded(|| core.on_ready(Direction::Write));
                }
                if flags & (libc::EPOLLIN | libc::EPOLLERR | libc::EPOLLHUP | libc::EPOLLRDHUP) != 0 {
                    guarded(|| core.on_ready(Direction::Read));
                }
            }
            self.run_timers();
            self.run_tasks();
        }
        self.exit();
        CURRENT.with(|c| c.set(std::ptr::null()));
    }

    /// epoll_wait, spinning with a zero timeout for up to `spin` before sleeping, and never past
    /// the next timer's deadline.
    fn wait(&self, events: &mut [libc::epoll_event]) -> usize {
        let next_timer = self.timers.lock().next_deadline();
        let sleep = || timers::timeout_ms(next_timer, Instant::now());
        let poll = |timeout: i32, events: &mut [libc::epoll_event]| -> usize {
            // SAFETY: the buffer is valid for MAX_EVENTS entries.
            let n = unsafe { libc::epoll_wait(self.epfd, events.as_mut_ptr(), events.len() as i32, timeout) };
            if n < 0 {
                0
            } else {
                n as usize
            }
        };
        let n = poll(0, events);
        if n > 0 {
            return n;
        }
        if self.spin.is_zero() || SPINNER.swap(true, Ordering::Acquire) {
            return poll(sleep(), events);
        }
        let mut deadline = Instant::now() + self.spin;
        if let Some(t) = next_timer {
            deadline = deadline.min(t);
        }
        let mut n = 0;
        while n == 0 && Instant::now() < deadline {
            std::hint::spin_loop();
            n = poll(0, events);
        }
        SPINNER.store(false, Ordering::Release);
        if n > 0 {
            n
        } else {
            poll(sleep(), events)
        }
    }

    fn drain_wake_fd(&self) {
        let mut buf = 0u64;
        // SAFETY: reads 8 bytes into a local.
        unsafe { libc::read(self.wake_fd, &mut buf as *mut u64 as *mut libc::c_void, 8) };
    }

    fn run_tasks(&self) {
        let tasks = std::mem::take(&mut self.tasks.lock().queue);
        for task in tasks {
            guarded(task);
        }
    }

    /// Shutdown: every pending operation completes as aborted (callbacks run here), later tasks
    /// run on their posters' threads.
    fn exit(&self) {
        // Timers that have not fired never will: their tasks are dropped (what they would have
        // completed completes through the aborts below or its own drop).
        drop(self.timers.lock().clear());
        let cores: Vec<usize> = self.registered.lock().iter().copied().collect();
        for core in cores {
            // SAFETY: still registered; references are released only by tasks on this thread.
            let core = unsafe { &*(core as *const IoCore) };
            guarded(|| core.abort_pending(Error::aborted()));
        }
        loop {
            let tasks = {
                let mut t = self.tasks.lock();
                if t.queue.is_empty() {
                    t.exited = true;
                    self.exited.store(true, Ordering::Release);
                    break;
                }
                std::mem::take(&mut t.queue)
            };
            for task in tasks {
                guarded(task);
            }
        }
    }
}

impl Drop for EventLoop {
    fn drop(&mut self) {
        for core in self.registered.get_mut().drain() {
            // SAFETY: the loop's own references, released once.
            unsafe { drop(Arc::from_raw(core as *const IoCore)) };
        }
        // SAFETY: closing fds we own.
        unsafe {
            libc::close(self.wake_fd);
            libc::close(self.epfd);
        }
    }
}

/// A fork can leave the spinner flag of a parent's loop set: the child's loops start afresh.
pub(super) fn reset_spinner() {
    SPINNER.store(false, Ordering::Release);
}

/// Runs engine work so that a panic in the library never takes the engine thread down.
fn guarded(f: impl FnOnce()) {
    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).is_err() {
        super::report_panic("engine work");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn a_sleeping_loop_wakes_for_its_timers_in_deadline_order() {
        let lp = EventLoop::new(Duration::ZERO).unwrap();
        let run = lp.clone();
        let thread = std::thread::spawn(move || run.run());
        let (tx, rx) = mpsc::channel();
        let now = Instant::now();
        let at = |ms: u64| now + Duration::from_millis(ms);
        let send = |n: u64| {
            let tx = tx.clone();
            Box::new(move || tx.send((n, Instant::now())).unwrap()) as Task
        };
        lp.add_timer(at(60), send(60));
        let cancelled = lp.add_timer(at(30), send(30));
        lp.add_timer(at(15), send(15));
        assert!(lp.cancel_timer(cancelled));
        assert!(!lp.cancel_timer(cancelled));
        let (first, t1) = rx.recv_timeout(Duration::from_secs(5)).unwrap();
        let (second, t2) = rx.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!((first, second), (15, 60));
        // Never early.
        assert!(t1 >= at(15) && t2 >= at(60));
        assert!(rx.recv_timeout(Duration::from_millis(50)).is_err());
        lp.stop();
        thread.join().unwrap();
    }
}
