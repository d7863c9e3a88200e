//! The guest's allocator: a bump arena that lives exactly one evaluation.
//!
//! The host runs every evaluation in a fresh instance and throws the instance
//! away afterwards, so nothing a policy allocates needs to be reused: memory
//! is handed out by bumping a pointer and only the most recent allocation is
//! ever given back or grown in place (which covers a `Vec` or `String`
//! being built). wasi-libc's dlmalloc, the default, spent more wasm
//! instructions on the thousands of small strings of a large payload than the
//! rules did. The cost is that memory freed out of order is not reused:
//! the host's memory budget bounds what one evaluation allocates in total,
//! not its peak. The built-ins stay far below it on the fixture corpora.
//!
//! [`Bump`] is the pure bookkeeping (tested natively); on wasm32 [`Arena`]
//! feeds it pages from `memory.grow`. Built for `wasm32-unknown-unknown`
//! (the built-ins) nothing else allocates, so the arena first uses the
//! memory the module starts with, from `__heap_base` to the end of its
//! initial memory: an evaluation that fits there never calls `memory.grow`,
//! which spares the host two `mprotect`s per instance (growing the slot, and
//! shrinking it back when the slot is reused). Under WASI, wasi-libc's own
//! `malloc` owns that region, so there the arena only grows.

use core::alloc::Layout;

/// Wasm page size.
pub const PAGE: usize = 65536;
/// Pages requested per `memory.grow` at least (each grow is a host call).
pub const GROW_PAGES: usize = 16;

/// Bump bookkeeping over chunks of linear memory. `grow(pages)` returns the
/// base address of `pages` fresh pages, or `None` when the host refuses.
#[derive(Debug, Default)]
pub struct Bump {
    next: usize,
    end: usize,
    /// Start of the most recent allocation (the only one freed or grown in place).
    last: usize,
}

impl Bump {
    pub const fn new() -> Bump {
        Bump {
            next: 0,
            end: 0,
            last: usize::MAX,
        }
    }

    /// Hand out `start..end` first (memory no one else uses), before growing.
    /// Ignored once anything was allocated.
    pub fn seed(&mut self, start: usize, end: usize) {
        if self.end == 0 && start < end {
            self.next = start;
            self.end = end;
        }
    }

    /// Address of a new block for `layout`, or 0 when memory is exhausted.
    pub fn alloc(&mut self, layout: Layout, grow: impl FnOnce(usize) -> Option<usize>) -> usize {
        let align = layout.align();
        let mut start = match self.next.checked_add(align - 1) {
            Some(n) => n & !(align - 1),
            None => return 0,
        };
        let Some(mut stop) = start.checked_add(layout.size()) else {
            return 0;
        };
        if stop > self.end || self.end == 0 {
            let need = layout
                .size()
                .saturating_add(align)
                .div_ceil(PAGE)
                .max(GROW_PAGES);
            let Some(base) = grow(need) else { return 0 };
            if base != self.end || self.end == 0 {
                // Not contiguous with the current chunk (someone else grew
                // memory in between): start a new chunk.
                self.next = base;
                start = (base + align - 1) & !(align - 1);
            }
            self.end = base + need * PAGE;
            stop = start + layout.size();
            if stop > self.end {
                return 0;
            }
        }
        self.next = stop;
        self.last = start;
        start
    }

    /// Nothing handed out and no memory yet.
    pub fn is_unused(&self) -> bool {
        self.end == 0
    }

    /// Give `ptr` back: only the most recent allocation is reclaimed.
    pub fn dealloc(&mut self, ptr: usize) {
        if ptr == self.last {
            self.next = ptr;
            self.last = usize::MAX;
        }
    }

    /// Grow or shrink the most recent allocation in place if it fits the
    /// current chunk; `false` means the caller must move it.
    pub fn resize_in_place(&mut self, ptr: usize, new_size: usize) -> bool {
        if ptr != self.last {
            return false;
        }
        match ptr.checked_add(new_size) {
            Some(stop) if stop <= self.end => {
                self.next = stop;
                true
            }
            _ => false,
        }
    }
}

#[cfg(target_arch = "wasm32")]
mod wasm {
    use super::{Bump, PAGE};
    use core::alloc::{GlobalAlloc, Layout};
    use core::cell::UnsafeCell;

    /// The global allocator of every policy built with this SDK.
    pub struct Arena(UnsafeCell<Bump>);

    // SAFETY: a policy component is single-threaded (no wasm threads in the
    // policy world), so the cell is never accessed concurrently.
    unsafe impl Sync for Arena {}

    /// The free memory the module starts with, `__heap_base` to the end of
    /// the initial memory (see the module docs; not under WASI).
    #[cfg(target_os = "unknown")]
    fn initial_heap() -> (usize, usize) {
        unsafe extern "C" {
            /// End of the data and stack, defined by the wasm linker.
            static __heap_base: u8;
        }
        (
            &raw const __heap_base as usize,
            core::arch::wasm32::memory_size(0) * PAGE,
        )
    }
    #[cfg(not(target_os = "unknown"))]
    fn initial_heap() -> (usize, usize) {
        (0, 0)
    }

    fn grow(pages: usize) -> Option<usize> {
        let old = core::arch::wasm32::memory_grow(0, pages);
        (old != usize::MAX).then(|| old * PAGE)
    }

    unsafe impl GlobalAlloc for Arena {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            // SAFETY: single-threaded, and no reference outlives this call.
            let bump = unsafe { &mut *self.0.get() };
            if bump.is_unused() {
                let (start, end) = initial_heap();
                bump.seed(start, end);
            }
            bump.alloc(layout, grow) as *mut u8
        }
        unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
            // SAFETY: as above.
            unsafe { &mut *self.0.get() }.dealloc(ptr as usize);
        }
        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            // SAFETY: as above.
            let bump = unsafe { &mut *self.0.get() };
            if bump.resize_in_place(ptr as usize, new_size) {
                return ptr;
            }
            // SAFETY: `layout.align()` is a valid alignment and the caller
            // guarantees `new_size`, rounded up to it, does not overflow.
            let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
            let new = bump.alloc(new_layout, grow) as *mut u8;
            if !new.is_null() {
                // SAFETY: both blocks are live and distinct (a bump never
                // hands out an address twice without a dealloc of the last).
                unsafe { core::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size)) };
            }
            new
        }
    }

    #[global_allocator]
    static ARENA: Arena = Arena(UnsafeCell::new(Bump::new()));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake linear memory: pages handed out upwards from `top`, with an
    /// optional foreign grow in between and a page limit.
    struct Mem {
        top: usize,
        limit: usize,
    }
    impl Mem {
        fn grow(&mut self, pages: usize) -> Option<usize> {
            let base = self.top;
            let bytes = pages.checked_mul(PAGE)?;
            (base.checked_add(bytes)? <= self.limit).then(|| {
                self.top += pages * PAGE;
                base
            })
        }
    }

    fn l(size: usize, align: usize) -> Layout {
        Layout::from_size_align(size, align).unwrap()
    }

    #[test]
    fn allocations_are_aligned_disjoint_and_the_last_is_reused() {
        let mut mem = Mem {
            top: 3 * PAGE,
            limit: 1 << 30,
        };
        let mut b = Bump::new();
        let a = b.alloc(l(3, 1), |p| mem.grow(p));
        let c = b.alloc(l(8, 8), |p| mem.grow(p));
        assert_eq!(a, 3 * PAGE);
        assert_eq!(c % 8, 0);
        assert!(c >= a + 3);
        b.dealloc(a); // not the last: kept
        let d = b.alloc(l(4, 4), |p| mem.grow(p));
        assert!(d >= c + 8);
        b.dealloc(d); // the last: reclaimed
        assert_eq!(b.alloc(l(4, 4), |p| mem.grow(p)), d);
        assert!(b.resize_in_place(d, 100));
        assert!(!b.resize_in_place(c, 100));
        assert_eq!(b.alloc(l(1, 1), |p| mem.grow(p)), d + 100);
    }

    #[test]
    fn grows_by_chunks_and_starts_over_after_a_foreign_grow() {
        let mut mem = Mem {
            top: PAGE,
            limit: 1 << 30,
        };
        let mut b = Bump::new();
        let a = b.alloc(l(10, 1), |p| mem.grow(p));
        assert_eq!(mem.top, PAGE + GROW_PAGES * PAGE);
        mem.top += PAGE; // another allocator grew memory
        let big = b.alloc(l(GROW_PAGES * PAGE, 16), |p| mem.grow(p));
        assert!(
            big >= PAGE + (GROW_PAGES + 1) * PAGE,
            "new chunk after the foreign page"
        );
        assert!(big > a);
        assert_eq!(big % 16, 0);
    }

    #[test]
    fn a_seeded_region_is_used_before_growing_and_continued_contiguously() {
        let mut mem = Mem {
            top: 4 * PAGE,
            limit: 1 << 30,
        };
        let mut b = Bump::new();
        assert!(b.is_unused());
        b.seed(3 * PAGE + 8, 4 * PAGE);
        assert!(!b.is_unused());
        let a = b.alloc(l(100, 8), |p| mem.grow(p));
        assert_eq!(a, 3 * PAGE + 8);
        assert_eq!(mem.top, 4 * PAGE, "no grow while the seed has room");
        // Does not fit the rest of the seed: grows, contiguous with it.
        let big = b.alloc(l(PAGE, 8), |p| mem.grow(p));
        assert_eq!(mem.top, 4 * PAGE + GROW_PAGES * PAGE);
        assert_eq!(big, a + 104, "the chunk continues the seeded region");
        b.seed(0, PAGE); // ignored once in use
        assert!(b.alloc(l(1, 1), |p| mem.grow(p)) > big);
    }

    #[test]
    fn exhaustion_returns_null() {
        let mut mem = Mem {
            top: PAGE,
            limit: PAGE + GROW_PAGES * PAGE,
        };
        let mut b = Bump::new();
        assert_ne!(b.alloc(l(PAGE, 1), |p| mem.grow(p)), 0);
        assert_eq!(b.alloc(l(GROW_PAGES * PAGE, 1), |p| mem.grow(p)), 0);
        assert_eq!(b.alloc(l(isize::MAX as usize - 8, 1), |p| mem.grow(p)), 0);
    }
}
