//! One event loop: an edge-triggered epoll set, its thread, a queue of posted tasks and its
//! timers (the earliest deadline bounds each wait).
//!
//! Each registered socket is kept alive by one strong reference that the loop owns; its fd joins
//! the epoll set (with a pointer to its `IoCore` as the event's data) only when an operation first
//! waits for the loop (`IoCore::arm`). Deregistering removes the fd from epoll first and releases
//! that reference from a task that runs after the current batch of events, so an event already
//! fetched by epoll_wait never points at freed memory; a socket that never joined the set is
//! released at once, by the thread that closes it.

use super::io_core::{CoreRef, Direction, IoCore};
use super::signals;
use super::timers::{self, TimerKey, Timers};
use super::Task;
use crate::error::{Error, Result};
use parking_lot::Mutex;
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
    /// The IoCore pointers this loop holds a strong reference for, in no order: each core knows
    /// its place (`IoCore::registry_index`), so a removal is a swap with the last (a Vec of
    /// words costs an idle socket 8 bytes, where a hash set cost 15).
    registered: Mutex<Vec<usize>>,
    /// Serializes `IoCore::arm`: a core's second arming waits for the first and sees its outcome.
    arming: Mutex<()>,
    timers: Mutex<Timers>,
    /// The most an idle wait spins (zero: never); `SpinPolicy` decides how much of it to use.
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
                registered: Mutex::new(Vec::new()),
                arming: Mutex::new(()),
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
        let due = {
            let mut timers = self.timers.lock();
            // The common case, once per pass of the loop: no clock read and nothing allocated.
            if timers.is_empty() {
                return;
            }
            timers.take_due(Instant::now())
        };
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

    /// Keeps the strong reference for `core`, whose fd joins the epoll set when an operation
    /// first waits for this loop (`IoCore::arm`).
    pub(super) fn register(&self, core: CoreRef) {
        let ptr = &*core as *const IoCore;
        std::mem::forget(core);
        let mut registered = self.registered.lock();
        // SAFETY: just registered, and alive: this loop holds its reference.
        unsafe { &*ptr }.registry_index.store(registered.len() as u32, Ordering::Relaxed);
        registered.push(ptr as usize);
    }

    /// Runs `arm` (which adds a registered core's fd to the epoll set once) alone.
    pub(super) fn arming<R>(&self, arm: impl FnOnce() -> R) -> R {
        let _one_at_a_time = self.arming.lock();
        arm()
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

    /// Whether `fd` is in the epoll set, as the kernel lists it (/proc/self/fdinfo).
    #[cfg(test)]
    pub(super) fn watches(&self, fd: RawFd) -> bool {
        let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", self.epfd)).unwrap_or_default();
        info.lines().any(|l| l.strip_prefix("tfd:").and_then(|r| r.split_whitespace().next()) == Some(&fd.to_string()))
    }

    pub(super) fn epoll_del(&self, fd: RawFd) {
        let mut ev = libc::epoll_event { events: 0, u64: 0 };
        // SAFETY: removing an fd from our epoll set; failure (already gone) is harmless.
        unsafe { libc::epoll_ctl(self.epfd, libc::EPOLL_CTL_DEL, fd, &mut ev) };
    }

    /// Releases the loop's reference to `core`, whose fd never joined the epoll set: no event
    /// names it, so this needs no pass of the loop (a socket used only by synchronous calls
    /// never wakes it). Safe beside `exit`, which holds references of its own to the cores it
    /// goes through.
    pub(super) fn release_now(&self, core: *const IoCore) {
        if self.unregister(core as usize) {
            // SAFETY: the reference kept by `register`, released exactly once.
            drop(unsafe { CoreRef::adopt(core) });
        }
    }

    /// Releases the loop's reference to `core` once events already fetched have been handled.
    /// The caller has removed the fd from the epoll set.
    pub(super) fn release(self: &Arc<Self>, core: *const IoCore) {
        let (lp, core) = (self.clone(), core as usize);
        self.post(Box::new(move || {
            if lp.unregister(core) {
                // SAFETY: the reference kept by `register`, released exactly once.
                drop(unsafe { CoreRef::adopt(core as *const IoCore) });
            }
        }));
    }

    /// Removes `core` from the registry; false if it was not there.
    fn unregister(&self, core: usize) -> bool {
        let mut registered = self.registered.lock();
        // SAFETY: registered cores are alive (this loop holds their references); `core` is one
        // until this removes it.
        let at = unsafe { &*(core as *const IoCore) }.registry_index.load(Ordering::Relaxed) as usize;
        if registered.get(at) != Some(&core) {
            return false;
        }
        registered.swap_remove(at);
        if let Some(&moved) = registered.get(at) {
            // SAFETY: as above, for the core that took its place.
            unsafe { &*(moved as *const IoCore) }.registry_index.store(at as u32, Ordering::Relaxed);
        }
        true
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
        let mut spin = Spin::new(self.spin);
        while !self.stopping.load(Ordering::Acquire) {
            let n = self.wait(&mut events, &mut spin);
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
                // Reads first: an edge for arriving data also reports the socket writable
                // (EPOLLOUT is level state in the event mask), and a write side with nothing
                // queued should not stand between the data and its callback.
                if flags & (libc::EPOLLIN | libc::EPOLLERR | libc::EPOLLHUP | libc::EPOLLRDHUP) != 0 {
                    guarded(|| core.on_ready(Direction::Read));
                }
                if flags & (libc::EPOLLOUT | libc::EPOLLERR | libc::EPOLLHUP) != 0 {
                    guarded(|| core.on_ready(Direction::Write));
                }
            }
            self.run_timers();
            self.run_tasks();
        }
        self.exit();
        CURRENT.with(|c| c.set(std::ptr::null()));
    }

    /// epoll_wait, spinning with a zero timeout for the budget `spin` gives before sleeping, and
    /// never past the next timer's deadline.
    fn wait(&self, events: &mut [libc::epoll_event], spin: &mut Spin) -> usize {
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
        if n > 0 || spin.policy.max.is_zero() {
            return if n > 0 { n } else { poll(sleep(), events) };
        }
        let start = Instant::now();
        let budget = spin.budget(start);
        let mut n = 0;
        if !budget.is_zero() && !SPINNER.swap(true, Ordering::Acquire) {
            let mut deadline = start + budget;
            if let Some(t) = next_timer {
                deadline = deadline.min(t);
            }
            while n == 0 && Instant::now() < deadline {
                std::hint::spin_loop();
                n = poll(0, events);
            }
            SPINNER.store(false, Ordering::Release);
        }
        if n == 0 {
            n = poll(sleep(), events);
        }
        spin.policy.record(start.elapsed());
        n
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
        // References of our own: a socket that never waited for the loop is released by the
        // thread that closes it (`release_now`), meanwhile.
        let cores: Vec<CoreRef> = {
            let registered = self.registered.lock();
            // SAFETY: registered cores are alive while their registration holds, here under
            // the lock; each gets one more reference, released when `cores` is dropped.
            registered.iter().map(|&core| unsafe { CoreRef::retain(core as *const IoCore) }).collect()
        };
        for core in &cores {
            guarded(|| core.abort_pending(Error::aborted()));
        }
        drop(cores);
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
        for core in self.registered.get_mut().drain(..) {
            // SAFETY: the loop's own references, released once.
            drop(unsafe { CoreRef::adopt(core as *const IoCore) });
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

/// Consecutive missed spins double the number of waits slept through before the next probing
/// spin, up to this many: an idle loop spends at most one budget per 1024 waits finding out that
/// the traffic has turned quick again (a quick wait seen while sleeping brings the spin back at
/// once, so the probe only matters for answers that come within the budget but not within the
/// budget minus a wake-up).
const MAX_SKIP: u32 = 1023;

/// When the loop spins, as a pure function of how long its recent waits lasted (no clock, no
/// syscalls: the unit tests feed it durations).
///
/// A spin pays only if the event comes before the budget runs out; otherwise it burns the budget
/// and then pays the wake-up anyway. So the loop spins while its last wait was one a spin would
/// have caught (it lasted at most `max`), and after k spins in a row that missed it sleeps
/// through the next 2^k - 1 waits before it tries one again. Waits it slept through count too:
/// one that ended within `max` (so the event came within `max` minus the wake-up) shows the spin
/// would pay, and turns it back on at once.
#[derive(Debug, Clone)]
pub(super) struct SpinPolicy {
    max: Duration,
    /// Consecutive spins (offered budgets) after which the wait lasted longer than `max`.
    misses: u32,
    /// Waits still to sleep through before the next spin.
    skip: u32,
    /// The budget of the current wait was `max` (a spin, or one the CPU check refused).
    spinning: bool,
}

impl SpinPolicy {
    pub(super) fn new(max: Duration) -> SpinPolicy {
        SpinPolicy { max, misses: 0, skip: 0, spinning: false }
    }

    /// The spin for the wait that starts now: the whole budget, or zero (sleep at once).
    pub(super) fn next_budget(&mut self) -> Duration {
        self.spinning = self.skip == 0;
        if self.skip > 0 {
            self.skip -= 1;
            return Duration::ZERO;
        }
        self.max
    }

    /// How long the wait just finished lasted, from its start to the events (or the timeout),
    /// whether it spun, slept or both.
    pub(super) fn record(&mut self, waited: Duration) {
        if waited <= self.max {
            self.misses = 0;
            self.skip = 0;
        } else if self.spinning {
            self.misses = self.misses.saturating_add(1);
            self.skip = 1u32.checked_shl(self.misses).map_or(MAX_SKIP, |b| (b - 1).min(MAX_SKIP));
        }
    }
}

/// How often a loop measures how much CPU the rest of the process uses: often enough to follow
/// an application that turns busy, rarely enough that two clock reads cost nothing beside a spin.
const CPU_WINDOW: Duration = Duration::from_millis(1);

/// What a spinner must leave to the rest of the machine, in CPUs, besides its own: the event it
/// spins for is produced by someone else (the peer, the kernel, the application), and on 2 vCPUs
/// an application thread that keeps the other CPU busy would otherwise share it with every other
/// runnable thread, paying back each wake-up the spin saved as a preemption (issue 14: the hot
/// p99 doubled with the fixed spin).
const CPU_HEADROOM: f64 = 0.5;

/// Whether spinning leaves the headroom: `cpus` the process may use, `others_busy` the CPUs the
/// process's other threads (application threads, other loops, spinning or not) kept busy over
/// the last window.
pub(super) fn cpu_allows_spin(cpus: usize, others_busy: f64) -> bool {
    cpus as f64 - others_busy >= 1.0 + CPU_HEADROOM
}

/// How long a loop does not spin after it saw contention for the CPUs: runnable threads of any
/// process waited for a CPU for more than CONTENTION_STALL of the window (the kernel's CPU
/// pressure, /proc/pressure/cpu). Then a spinner keeps someone waiting, and once preempted it
/// waits a whole time slice itself, where a sleeping loop would be woken at once (measured under
/// other builds on 2 vCPUs: a hot p99 tens of times the one without the spin). A few scheduler
/// periods; it doubles with each window in a row that finds contention, up to 32 times
/// (640 ms), so that on a machine that stays busy a spin that is preempted each time it resumes
/// costs little, while a stray blip on a quiet one costs only 20 ms of spinning.
///
/// Not the loop thread's own involuntary context switches, nor a lower share: the peer of a
/// one-connection echo, woken by the loop's write onto the loop's CPU, preempts the spinner once
/// per request on a quiet machine; with those two checks that echo lost most of what the spin
/// wins there, without them it had it back.
const CONTENTION_HOLD: Duration = Duration::from_millis(20);
const MAX_HOLD_SHIFT: u32 = 5;

/// The share of a window during which some thread waited for a CPU that counts as contention:
/// well above what the ping-pong with a peer and the stray kernel worker of a quiet machine
/// cause, well below a machine whose CPUs are all taken (where it approaches 1).
const CONTENTION_STALL: f64 = 0.2;

/// One loop's spin state: the policy, and what the rest of the machine leaves for a spin.
pub(super) struct Spin {
    policy: SpinPolicy,
    /// CPUs this process may run on (affinity and cgroup quota), read once.
    cpus: usize,
    /// The start of the current window: when, the process's and this thread's CPU time, and the
    /// CPU pressure's total stall.
    window: Option<Window>,
    /// The CPUs the other threads kept busy in the last full window.
    others_busy: f64,
    /// No spin before this: the loop saw contention.
    hold_until: Option<Instant>,
    /// Windows in a row that found contention.
    contended: u32,
    /// /proc/pressure/cpu, where the kernel has it (PSI).
    pressure: Option<std::fs::File>,
}

#[derive(Clone, Copy)]
struct Window {
    at: Instant,
    process: Duration,
    thread: Duration,
    /// The total time some thread waited for a CPU (PSI "some"), in microseconds, or 0.
    stalled: u64,
}

impl Spin {
    fn new(max: Duration) -> Spin {
        let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        let pressure = if max.is_zero() { None } else { std::fs::File::open("/proc/pressure/cpu").ok() };
        Spin { policy: SpinPolicy::new(max), cpus, window: None, others_busy: 0.0, hold_until: None, contended: 0, pressure }
    }

    /// The spin for a wait starting at `now`: the policy's budget, unless the rest of the process
    /// leaves too little CPU for it or the machine's CPUs were contended lately.
    fn budget(&mut self, now: Instant) -> Duration {
        let budget = self.policy.next_budget();
        if budget.is_zero() {
            return budget;
        }
        self.sample(now);
        let held = self.hold_until.is_some_and(|t| now < t);
        if !held && cpu_allows_spin(self.cpus, self.others_busy) {
            budget
        } else {
            Duration::ZERO
        }
    }

    /// Closes the window when it is CPU_WINDOW old (only when a spin is being decided, so a loop
    /// that never spins never reads the clocks).
    fn sample(&mut self, now: Instant) {
        if self.window.is_some_and(|w| now.duration_since(w.at) < CPU_WINDOW) {
            return;
        }
        let (Some(process), Some(thread)) =
            (cpu_time(libc::CLOCK_PROCESS_CPUTIME_ID), cpu_time(libc::CLOCK_THREAD_CPUTIME_ID))
        else {
            return;
        };
        let stalled = self.pressure.as_ref().and_then(stalled_us).unwrap_or(0);
        self.close_window(Window { at: now, process, thread, stalled });
    }

    /// Ends the current window with the readings `next` (which opens the next one): what the
    /// other threads used, and whether the CPUs were contended. No syscalls: tests feed it.
    fn close_window(&mut self, next: Window) {
        if let Some(w) = self.window {
            let wall = next.at.duration_since(w.at).as_secs_f64().max(1e-9);
            let others = next.process.saturating_sub(w.process).saturating_sub(next.thread.saturating_sub(w.thread));
            self.others_busy = others.as_secs_f64() / wall;
            let stall = next.stalled.saturating_sub(w.stalled) as f64 / 1e6 / wall;
            if stall > CONTENTION_STALL {
                self.contended = self.contended.saturating_add(1);
                let hold = CONTENTION_HOLD * (1 << (self.contended - 1).min(MAX_HOLD_SHIFT));
                self.hold_until = Some(next.at + hold);
            } else {
                self.contended = 0;
            }
        }
        self.window = Some(next);
    }
}

/// The "some" total of /proc/pressure/cpu: microseconds during which at least one runnable
/// thread waited for a CPU, since boot.
fn stalled_us(file: &std::fs::File) -> Option<u64> {
    use std::os::unix::fs::FileExt;
    let mut buf = [0u8; 256];
    let n = file.read_at(&mut buf, 0).ok()?;
    parse_stalled(std::str::from_utf8(&buf[..n]).ok()?)
}

/// "some avg10=0.00 avg60=0.00 avg300=0.00 total=123" (first line) -> 123.
fn parse_stalled(text: &str) -> Option<u64> {
    let some = text.lines().next()?.strip_prefix("some ")?;
    some.split_whitespace().find_map(|f| f.strip_prefix("total="))?.parse().ok()
}

fn cpu_time(clock: libc::clockid_t) -> Option<Duration> {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: writes a timespec we own.
    if unsafe { libc::clock_gettime(clock, &mut ts) } != 0 {
        return None;
    }
    Some(Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
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

    const MAX: Duration = Duration::from_micros(50);
    const QUICK: Duration = Duration::from_micros(20);
    const LONG: Duration = Duration::from_micros(800);

    /// The budgets of the next `n` waits, each of which lasts `waited`.
    fn budgets(p: &mut SpinPolicy, n: usize, waited: Duration) -> Vec<bool> {
        (0..n)
            .map(|_| {
                let spins = !p.next_budget().is_zero();
                p.record(waited);
                spins
            })
            .collect()
    }

    #[test]
    fn quick_waits_keep_the_whole_budget() {
        let mut p = SpinPolicy::new(MAX);
        assert!(budgets(&mut p, 100, QUICK).iter().all(|&s| s));
        assert_eq!(p.next_budget(), MAX);
        // Exactly the budget still counts as caught.
        p.record(MAX);
        assert_eq!(p.next_budget(), MAX);
    }

    #[test]
    fn long_waits_back_off_exponentially_and_probe_now_and_then() {
        let mut p = SpinPolicy::new(MAX);
        let spins = budgets(&mut p, 1 + 1 + 1 + 3 + 1 + 7 + 1, LONG);
        // Spin, miss, sleep 1; spin, miss, sleep 3; spin, miss, sleep 7; spin.
        let want = [true, false, true, false, false, false, true, false, false, false, false, false, false, false, true];
        assert_eq!(spins, want);
        // The backoff stops growing: at most MAX_SKIP sleeps between two probes.
        let spins = budgets(&mut p, 10_000, LONG);
        let probes: Vec<usize> = spins.iter().enumerate().filter(|(_, &s)| s).map(|(i, _)| i).collect();
        assert!(probes.len() >= 8, "{probes:?}");
        assert!(probes.windows(2).all(|w| w[1] - w[0] <= MAX_SKIP as usize + 1), "{probes:?}");
    }

    #[test]
    fn a_quick_wait_seen_while_sleeping_turns_the_spin_back_on() {
        let mut p = SpinPolicy::new(MAX);
        budgets(&mut p, 50, LONG);
        assert_eq!(p.next_budget(), Duration::ZERO);
        p.record(QUICK);
        assert_eq!(p.next_budget(), MAX);
        // One slow answer among quick ones costs one wait without a spin, not the spin.
        p.record(LONG);
        assert_eq!(budgets(&mut p, 3, QUICK), [false, true, true]);
    }

    #[test]
    fn a_zero_budget_never_spins() {
        let mut p = SpinPolicy::new(Duration::ZERO);
        assert!(budgets(&mut p, 10, Duration::ZERO).iter().all(|&s| !s));
        assert!(budgets(&mut p, 10, LONG).iter().all(|&s| !s));
    }

    #[test]
    fn the_spin_leaves_half_a_cpu_to_the_rest_of_the_process_and_its_peers() {
        // 2 vCPUs: the one-connection echo (the application asleep) spins, an application thread
        // that keeps the other CPU busy (the hot latency row) stops it.
        assert!(cpu_allows_spin(2, 0.0));
        assert!(cpu_allows_spin(2, 0.4));
        assert!(!cpu_allows_spin(2, 0.9));
        // One CPU: whatever the spinner waits for could only run by preempting it.
        assert!(!cpu_allows_spin(1, 0.0));
        assert!(cpu_allows_spin(8, 5.0));
        assert!(!cpu_allows_spin(8, 7.0));
    }

    #[test]
    fn cpu_pressure_is_read_from_the_kernels_format() {
        let psi = "some avg10=5.17 avg60=39.98 avg300=55.71 total=6909556614\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n";
        assert_eq!(parse_stalled(psi), Some(6909556614));
        assert_eq!(parse_stalled("full avg10=0.00 total=5\n"), None);
        assert_eq!(parse_stalled("some avg10=0.00\n"), None);
        assert_eq!(parse_stalled(""), None);
        // Where the kernel has PSI, the file reads and its total never goes back.
        if let Ok(f) = std::fs::File::open("/proc/pressure/cpu") {
            let a = stalled_us(&f).expect("PSI in the kernel's format");
            assert!(stalled_us(&f).unwrap() >= a);
        }
    }

    /// A window's readings: `ms` after `t0`, `others_ms` of other threads' CPU and `stall_us`
    /// of CPU pressure since then.
    fn reading(t0: Instant, ms: u64, others_ms: u64, stall_us: u64) -> Window {
        let ms_ = Duration::from_millis;
        Window { at: t0 + ms_(ms), process: ms_(others_ms), thread: Duration::ZERO, stalled: stall_us }
    }

    #[test]
    fn cpu_pressure_holds_the_spin_longer_while_it_lasts() {
        let t0 = Instant::now();
        let mut spin = Spin::new(MAX);
        spin.cpus = 64;
        spin.close_window(reading(t0, 0, 0, 0));
        // A quiet window: 10% of it stalled.
        spin.close_window(reading(t0, 1, 0, 100));
        assert!(spin.hold_until.is_none());
        // Window after window with half of it stalled: the hold doubles up to 640 ms.
        let mut holds = Vec::new();
        for i in 0..8u64 {
            spin.close_window(reading(t0, 2 + i, 0, 100 + 500 * (i + 1)));
            holds.push(spin.hold_until.unwrap() - (t0 + Duration::from_millis(2 + i)));
        }
        let ms = Duration::from_millis;
        assert_eq!(holds, [ms(20), ms(40), ms(80), ms(160), ms(320), ms(640), ms(640), ms(640)]);
        // The hold decides the budget, and ends.
        let at = t0 + ms(9);
        spin.window = Some(reading(t0, 9, 0, 4100)); // no new window: within CPU_WINDOW
        spin.policy.record(QUICK);
        assert_eq!(spin.budget(at), Duration::ZERO);
        spin.hold_until = Some(at);
        spin.policy.record(QUICK);
        assert_eq!(spin.budget(at), MAX);
        // A quiet window starts the count again.
        spin.close_window(reading(t0, 10, 0, 4100));
        assert_eq!(spin.contended, 0);
        spin.close_window(reading(t0, 11, 0, 4700));
        assert_eq!(spin.hold_until.unwrap() - (t0 + ms(11)), ms(20));
    }

    #[test]
    fn the_other_threads_cpu_is_per_window() {
        let t0 = Instant::now();
        let mut spin = Spin::new(MAX);
        spin.close_window(reading(t0, 0, 0, 0));
        spin.close_window(reading(t0, 2, 2, 0));
        assert!((spin.others_busy - 1.0).abs() < 1e-9);
        // This thread's own CPU is not the others'.
        let mut next = reading(t0, 4, 4, 0);
        next.thread = Duration::from_millis(1);
        spin.close_window(next);
        assert!((spin.others_busy - 0.5).abs() < 1e-9, "{}", spin.others_busy);
    }

    #[test]
    fn the_cpu_of_the_other_threads_is_measured_and_decides() {
        // A thread of this process that burns CPU, the way the hot latency row's application
        // thread does, while this one (the loop) sleeps in join.
        const BURN: Duration = Duration::from_millis(30);
        let mut spin = Spin::new(MAX);
        spin.cpus = 2; // as on the machine of issue 14, whatever this one has
        let t0 = Instant::now();
        spin.sample(t0);
        std::thread::spawn(|| {
            let start = cpu_time(libc::CLOCK_THREAD_CPUTIME_ID).unwrap();
            while cpu_time(libc::CLOCK_THREAD_CPUTIME_ID).unwrap() - start < BURN {
                std::hint::spin_loop();
            }
        })
        .join()
        .unwrap();
        let t1 = Instant::now();
        let spins = !spin.budget(t1).is_zero();
        // At least what the thread burnt (tests running in parallel may add theirs), and no
        // more than two CPUs' worth.
        let others = spin.others_busy * t1.duration_since(t0).as_secs_f64();
        assert!(others >= BURN.as_secs_f64() * 0.99, "measured {others} s of other threads' CPU");
        assert!(spin.others_busy <= 2.05, "measured {} CPUs", spin.others_busy);
        if !cpu_allows_spin(2, spin.others_busy) {
            assert!(!spins);
        }
        // The window closed at t1: a decision within CPU_WINDOW of it reuses the measurement.
        let before = spin.others_busy;
        spin.sample(t1 + CPU_WINDOW / 2);
        assert_eq!(spin.others_busy, before);
    }

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
