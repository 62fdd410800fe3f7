//! What the steady state allocates on the caller's thread, through the C API (issue 14): a
//! BeginReceive that has to wait, and a BeginSend that completes inside Begin with its callback
//! and End, allocate nothing once the first operations have made their result pages. A pending
//! read then costs its 64-byte result slot and nothing else.
//!
//! Counted per thread, by a counting global allocator: the engine's threads allocate at times of
//! their own (tasks, timers), which says nothing about the caller's path.

use apmnet::ffi::socket::{
    apm_socket_begin_receive, apm_socket_begin_send, apm_socket_close, apm_socket_connect, apm_socket_create,
    apm_socket_end_receive, apm_socket_end_send,
};
use apmnet::ffi::{apm_async_result, apm_socket};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::ffi::c_void;
use std::io::Write;
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn count() {
    // try_with: a thread's last frees and allocations can come after its locals are gone.
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
}

// SAFETY: every call goes to the system allocator unchanged; counting touches a const-initialised
// thread-local Cell, which allocates nothing.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: as the caller's contract.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: as the caller's contract.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: as the caller's contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as the caller's contract.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> usize {
    ALLOCATIONS.with(|n| n.get())
}

const APM_OK: i32 = 0;

/// Callbacks seen, by any thread.
static CALLBACKS: AtomicUsize = AtomicUsize::new(0);

unsafe extern "C" fn on_done(_: *mut apm_async_result, _: *mut c_void) {
    CALLBACKS.fetch_add(1, Ordering::SeqCst);
}

fn wait_for_callbacks(n: usize) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while CALLBACKS.load(Ordering::SeqCst) < n {
        assert!(std::time::Instant::now() < deadline, "no callback");
        std::thread::yield_now();
    }
}

#[test]
fn waiting_reads_and_inline_sends_allocate_nothing_on_the_callers_thread() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port() as i32;
    let mut socket: *mut apm_socket = std::ptr::null_mut();
    // SAFETY: the C API's contracts: valid out-parameters, a NUL-terminated host, buffers that
    // outlive their operations (they are this function's locals, and every operation is ended
    // before it returns).
    unsafe {
        assert_eq!(apm_socket_create(2, 1, 6, &mut socket), APM_OK);
        assert_eq!(apm_socket_connect(socket, c"127.0.0.1".as_ptr(), port), APM_OK);
    }
    let (mut peer, _) = listener.accept().unwrap();
    let mut buf = [0u8; 64];
    let msg = [7u8; 64];

    // One round trip: a receive that waits for the peer, then a send that completes inline.
    let mut round = |expected_callbacks: usize| -> (usize, usize) {
        let mut r: *mut apm_async_result = std::ptr::null_mut();
        let mut n = 0usize;
        let before = allocations();
        // SAFETY: as above.
        unsafe {
            assert_eq!(
                apm_socket_begin_receive(socket, buf.as_mut_ptr(), buf.len(), 0, buf.len(), Some(on_done), std::ptr::null_mut(), &mut r),
                APM_OK
            );
        }
        let begin_receive = allocations() - before;
        peer.write_all(&msg[..1]).unwrap();
        wait_for_callbacks(expected_callbacks);
        let before = allocations();
        // SAFETY: as above.
        unsafe {
            assert_eq!(apm_socket_end_receive(socket, r, &mut n), APM_OK);
            assert_eq!(n, 1);
            assert_eq!(
                apm_socket_begin_send(socket, msg.as_ptr(), msg.len(), 0, msg.len(), Some(on_done), std::ptr::null_mut(), &mut r),
                APM_OK
            );
            assert_eq!(apm_socket_end_send(socket, r, &mut n), APM_OK);
            assert_eq!(n, msg.len());
        }
        let send = allocations() - before;
        let mut got = [0u8; 64];
        std::io::Read::read_exact(&mut peer, &mut got).unwrap();
        (begin_receive, send)
    };

    // Warm up: the first results make their page, the free lists their room.
    for i in 0..300 {
        round(2 * i + 1);
    }
    // The counter counts (or the test below could not fail).
    let before = allocations();
    drop(std::hint::black_box(Box::new(1u64)));
    assert_eq!(allocations(), before + 1);
    for i in 300..310 {
        // Let the peer's delayed ACK of the last send arrive and be handled first: an EPOLLOUT
        // edge handled while this thread holds the write side is handed back to the loop as a
        // task (a legitimate allocation, and not this path's).
        std::thread::sleep(std::time::Duration::from_millis(50));
        let (receive, send) = round(2 * i + 1);
        assert_eq!(receive, 0, "a BeginReceive that waits allocated on the caller's thread");
        assert_eq!(send, 0, "EndReceive, then a BeginSend completed inline with its callback and End, allocated");
    }
    // SAFETY: the socket handle is ours, closed once.
    unsafe { assert_eq!(apm_socket_close(socket), APM_OK) };
}
