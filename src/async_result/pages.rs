//! A type-stable, append-only array: element `i` once made stays at one address for the life of
//! the process, so a reader may look at it without a lock while other threads make more.
//!
//! Elements live in pages of doubling size (32, 64, 128, ...), each allocated on first use and
//! never freed: index -> (page, offset) is a leading-zero count, and growing never moves an
//! element. This is what lets the results of asynchronous operations be read under a generation
//! check instead of a lock (see the parent module).

use std::sync::atomic::{AtomicPtr, Ordering};

const FIRST_PAGE_BITS: u32 = 5;
/// Pages 0..PAGES hold 32 * (2^PAGES - 1) elements: more than the 2^24 a handle can name.
const PAGES: usize = 20;
pub const CAPACITY: u32 = 1 << 24;

pub struct Pages<T: 'static> {
    pages: [AtomicPtr<T>; PAGES],
}

/// (page, offset in it) of element `i`.
fn place(i: u32) -> (usize, usize) {
    let j = i as u64 + (1 << FIRST_PAGE_BITS);
    let page = 63 - j.leading_zeros() - FIRST_PAGE_BITS;
    (page as usize, (j - (1u64 << (page + FIRST_PAGE_BITS))) as usize)
}

fn page_len(page: usize) -> usize {
    1 << (page as u32 + FIRST_PAGE_BITS)
}

impl<T: Send + Sync + 'static> Pages<T> {
    pub const fn new() -> Pages<T> {
        Pages { pages: [const { AtomicPtr::new(std::ptr::null_mut()) }; PAGES] }
    }

    /// Element `i`, if its page exists.
    pub fn get(&self, i: u32) -> Option<&'static T> {
        if i >= CAPACITY {
            return None;
        }
        let (page, offset) = place(i);
        let p = self.pages[page].load(Ordering::Acquire);
        // SAFETY: a non-null page pointer is a leaked allocation of `page_len(page)` elements,
        // initialised before it was published (Release below) and never freed.
        (!p.is_null()).then(|| unsafe { &*p.add(offset) })
    }

    /// Element `i`, making its page with `make(index)` for each element if it does not exist.
    pub fn get_or_make(&self, i: u32, make: impl Fn(u32) -> T) -> Option<&'static T> {
        if let Some(t) = self.get(i) {
            return Some(t);
        }
        if i >= CAPACITY {
            return None;
        }
        let (page, _) = place(i);
        let first = ((1u64 << (page as u32 + FIRST_PAGE_BITS)) - (1 << FIRST_PAGE_BITS)) as u32;
        let fresh: Box<[T]> = (0..page_len(page) as u32).map(|k| make(first + k)).collect();
        let fresh = Box::into_raw(fresh) as *mut T;
        if let Err(_other) =
            self.pages[page].compare_exchange(std::ptr::null_mut(), fresh, Ordering::AcqRel, Ordering::Acquire)
        {
            // Another thread made this page first: ours was never seen by anyone.
            // SAFETY: `fresh` came from Box::into_raw of a slice of this length just above.
            drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(fresh, page_len(page))) });
        }
        self.get(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_map_to_pages_without_gaps_or_overlaps() {
        let mut expected = (0usize, 0usize);
        for i in 0..100_000u32 {
            assert_eq!(place(i), expected, "index {i}");
            expected.1 += 1;
            if expected.1 == page_len(expected.0) {
                expected = (expected.0 + 1, 0);
            }
        }
        assert!(place(CAPACITY - 1).0 < PAGES);
    }

    #[test]
    fn elements_keep_their_address_as_pages_are_added() {
        let p: &'static Pages<u32> = Box::leak(Box::new(Pages::new()));
        assert!(p.get(0).is_none());
        let first = p.get_or_make(3, |i| i).unwrap() as *const u32;
        for i in 0..5000 {
            assert_eq!(*p.get_or_make(i, |i| i).unwrap(), i);
        }
        assert_eq!(p.get(3).unwrap() as *const u32, first);
        assert!(p.get(CAPACITY).is_none());
    }
}
