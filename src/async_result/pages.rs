//! A type-stable, append-only array: element `i` once made stays at one address for the life of
//! the process, so a reader may look at it without a lock while other threads make more.
//!
//! Elements live in pages of `PAGE` elements, each allocated on first use and never freed; the
//! page table is a static array of pointers, most of which stay null (untouched zero pages cost
//! no memory). Growing never moves an element. This is what lets the results of asynchronous
//! operations be read under a generation check instead of a lock (see the parent module).

use std::sync::atomic::{AtomicPtr, Ordering};

/// Elements per page: small enough that a page is a small step in memory (16 KiB of results),
/// large enough that the page table stays a fixed array.
const PAGE: usize = 256;
/// Indexes a handle can name (24 bits).
pub(super) const CAPACITY: u32 = 1 << 24;
const PAGES: usize = CAPACITY as usize / PAGE;

pub struct Pages<T: 'static> {
    pages: [AtomicPtr<T>; PAGES],
}

impl<T: Send + Sync + 'static> Pages<T> {
    pub const fn new() -> Pages<T> {
        Pages { pages: [const { AtomicPtr::new(std::ptr::null_mut()) }; PAGES] }
    }

    /// Element `i`, if its page exists.
    pub fn get(&self, i: u32) -> Option<&'static T> {
        let p = self.pages.get(i as usize / PAGE)?.load(Ordering::Acquire);
        // SAFETY: a non-null page pointer is a leaked allocation of PAGE elements, initialised
        // before it was published (Release below) and never freed.
        (!p.is_null()).then(|| unsafe { &*p.add(i as usize % PAGE) })
    }

    /// Element `i`, making its page with `make(index)` for each element if it does not exist.
    pub fn get_or_make(&self, i: u32, make: impl Fn(u32) -> T) -> Option<&'static T> {
        if let Some(t) = self.get(i) {
            return Some(t);
        }
        let page = self.pages.get(i as usize / PAGE)?;
        let first = i - i % PAGE as u32;
        let bytes = std::mem::size_of::<T>() * PAGE;
        // Mapped, not allocated: a page of results then occupies exactly its own memory pages,
        // where a heap allocation's header would straddle one more (a quarter more memory per
        // pending operation). Never unmapped once published (see the module's comment).
        // SAFETY: a fresh private anonymous mapping.
        let fresh = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if fresh == libc::MAP_FAILED {
            return None;
        }
        leak_sanitizer_root(fresh, bytes);
        let fresh = fresh as *mut T;
        for k in 0..PAGE {
            // SAFETY: within the mapping (page-aligned, so aligned for T), each element once.
            unsafe { fresh.add(k).write(make(first + k as u32)) };
        }
        if page.compare_exchange(std::ptr::null_mut(), fresh, Ordering::AcqRel, Ordering::Acquire).is_err() {
            // Another thread made this page first: ours was never seen by anyone.
            // SAFETY: the PAGE elements written above, in the mapping made above.
            unsafe {
                std::ptr::drop_in_place(std::ptr::slice_from_raw_parts_mut(fresh, PAGE));
            }
            // Left mapped: LeakSanitizer has no way to forget a root it was given. A lost race
            // is rare and costs one page, once.
        }
        self.get(i)
    }
}

/// LeakSanitizer scans the heap and the globals, not anonymous mappings: in a program run under
/// it, every object that an unended result holds (an accepted socket, a response) would be
/// reported as leaked. When it is in the process, the page is made one of its roots.
fn leak_sanitizer_root(page: *mut libc::c_void, bytes: usize) {
    type Register = unsafe extern "C" fn(*const libc::c_void, usize);
    static REGISTER: std::sync::OnceLock<Option<Register>> = std::sync::OnceLock::new();
    let register = REGISTER.get_or_init(|| {
        // SAFETY: a lookup by name in the loaded objects; the symbol, when present, is LSan's
        // `void __lsan_register_root_region(const void *, size_t)`.
        let f = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"__lsan_register_root_region".as_ptr()) };
        // SAFETY: as above.
        (!f.is_null()).then(|| unsafe { std::mem::transmute::<*mut libc::c_void, Register>(f) })
    });
    if let Some(register) = register {
        // SAFETY: the page is mapped for good (pages are never unmapped).
        unsafe { register(page, bytes) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elements_keep_their_address_as_pages_are_added() {
        let p: &'static Pages<u32> = Box::leak(Box::new(Pages::new()));
        assert!(p.get(0).is_none());
        let first = p.get_or_make(3, |i| i).unwrap() as *const u32;
        for i in (0..5000).chain([CAPACITY - 1]) {
            assert_eq!(*p.get_or_make(i, |i| i).unwrap(), i);
        }
        assert_eq!(p.get(3).unwrap() as *const u32, first);
        assert!(p.get(CAPACITY).is_none());
        assert!(p.get_or_make(CAPACITY, |i| i).is_none());
    }
}
