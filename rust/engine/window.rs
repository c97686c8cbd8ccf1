//! Where the bytes of one read go, by position in the read's window (`[0, len)`, window byte 0
//! being the read's first object byte).
//!
//! A plain read fills one contiguous slice. A coalesced span of `get_ranges` (several ranges
//! fetched with one request) fills a [`Scatter`]: its ranges' slices of the caller's buffer,
//! each at its offset in the window; the bytes between them (the gaps the coalescing paid
//! for) are dropped as they arrive. Either way a byte is written once, straight from the
//! response body, and a window splits into disjoint windows for parts read in parallel.

/// The destination of window bytes `[0, len())`.
pub enum Window<'a> {
    /// Window byte `i` goes to `buf[i]`.
    Contiguous(&'a mut [u8]),
    /// Window byte `i` goes to the piece covering `i`, if any; other bytes are dropped.
    Scatter(Scatter<'a>),
}

/// Where a run of window bytes goes (see [`Window::region_at`]).
pub enum Region<'s> {
    /// Into this slice of the caller's memory, from its first byte.
    Kept(&'s mut [u8]),
    /// Nowhere: this many bytes are read and dropped.
    Dropped(usize),
}

/// A window of `len` bytes whose pieces receive the bytes at their offsets.
pub struct Scatter<'a> {
    len: usize,
    /// (window offset, slice): sorted by offset, disjoint, non-empty, inside `[0, len)`.
    pieces: Vec<(usize, &'a mut [u8])>,
}

impl<'a> Scatter<'a> {
    /// A window of `len` bytes; piece `(at, buf)` receives window bytes `[at, at + buf.len())`.
    /// Empty pieces are dropped. Panics unless the pieces are in increasing offset order,
    /// disjoint and inside the window (a bug of the caller: bytes could not be placed).
    pub fn new(len: usize, pieces: impl IntoIterator<Item = (usize, &'a mut [u8])>) -> Self {
        let pieces: Vec<_> = pieces.into_iter().filter(|(_, buf)| !buf.is_empty()).collect();
        let mut end = 0;
        for (at, buf) in &pieces {
            assert!(*at >= end, "scatter pieces overlap or are out of order at window offset {at}");
            end = at + buf.len();
        }
        assert!(end <= len, "a scatter piece ends at {end}, past the window's {len} bytes");
        Scatter { len, pieces }
    }

    /// The same pieces, borrowed again.
    pub fn reborrow(&mut self) -> Scatter<'_> {
        Scatter { len: self.len, pieces: self.pieces.iter_mut().map(|(at, buf)| (*at, &mut **buf)).collect() }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn split_at(self, mid: usize) -> (Scatter<'a>, Scatter<'a>) {
        assert!(mid <= self.len, "split at {mid} of a {}-byte window", self.len);
        let (mut left, mut right) = (Vec::new(), Vec::new());
        for (at, buf) in self.pieces {
            if at + buf.len() <= mid {
                left.push((at, buf));
            } else if at >= mid {
                right.push((at - mid, buf));
            } else {
                let (head, tail) = buf.split_at_mut(mid - at);
                left.push((at, head));
                right.push((0, tail));
            }
        }
        (Scatter { len: mid, pieces: left }, Scatter { len: self.len - mid, pieces: right })
    }

    fn write(&mut self, at: usize, bytes: &[u8]) {
        let end = at + bytes.len();
        assert!(end <= self.len, "write of window bytes {at}..{end} past the window's {} bytes", self.len);
        // Pieces are sorted and disjoint, so their ends increase too: skip those before `at`.
        let first = self.pieces.partition_point(|(p, buf)| p + buf.len() <= at);
        for (p, buf) in &mut self.pieces[first..] {
            if *p >= end {
                break;
            }
            let (lo, hi) = (at.max(*p), end.min(*p + buf.len()));
            buf[lo - *p..hi - *p].copy_from_slice(&bytes[lo - at..hi - at]);
        }
    }
}

impl<'a> Window<'a> {
    pub fn len(&self) -> usize {
        match self {
            Window::Contiguous(buf) => buf.len(),
            Window::Scatter(s) => s.len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether any byte of the window is kept (a scatter window may lie entirely in a gap:
    /// reading it would only fetch bytes to drop).
    pub fn keeps_bytes(&self) -> bool {
        match self {
            Window::Contiguous(buf) => !buf.is_empty(),
            Window::Scatter(s) => !s.pieces.is_empty(),
        }
    }

    /// Window bytes `[0, mid)` and `[mid, len)`, as two windows. Panics if `mid > len()`.
    pub fn split_at(self, mid: usize) -> (Window<'a>, Window<'a>) {
        match self {
            Window::Contiguous(buf) => {
                let (head, tail) = buf.split_at_mut(mid);
                (Window::Contiguous(head), Window::Contiguous(tail))
            }
            Window::Scatter(s) => {
                let (head, tail) = s.split_at(mid);
                (Window::Scatter(head), Window::Scatter(tail))
            }
        }
    }

    /// The same window, borrowed again.
    pub fn reborrow(&mut self) -> Window<'_> {
        match self {
            Window::Contiguous(buf) => Window::Contiguous(buf),
            Window::Scatter(s) => Window::Scatter(s.reborrow()),
        }
    }

    /// Store window bytes `[at, at + bytes.len())`. Panics past the end of the window
    /// (callers check a body's length against the window before writing it).
    pub fn write(&mut self, at: usize, bytes: &[u8]) {
        match self {
            Window::Contiguous(buf) => buf[at..at + bytes.len()].copy_from_slice(bytes),
            Window::Scatter(s) => s.write(at, bytes),
        }
    }

    /// Where window bytes from `at` go, up to `max` of them: the caller's memory (the rest of
    /// the slice or piece holding `at`), or nowhere (a scatter gap, up to the next piece).
    /// For reading a body straight into place. Panics if `at` is not inside the window.
    pub fn region_at(&mut self, at: usize, max: usize) -> Region<'_> {
        assert!(at < self.len(), "window position {at} past the window's {} bytes", self.len());
        match self {
            Window::Contiguous(buf) => {
                let end = buf.len().min(at.saturating_add(max));
                Region::Kept(&mut buf[at..end])
            }
            Window::Scatter(s) => {
                let next = s.pieces.partition_point(|(p, buf)| p + buf.len() <= at);
                match s.pieces.get_mut(next) {
                    Some((p, buf)) if *p <= at => {
                        let end = buf.len().min((at - *p).saturating_add(max));
                        Region::Kept(&mut buf[at - *p..end])
                    }
                    Some((p, _)) => Region::Dropped((*p - at).min(max)),
                    None => Region::Dropped((s.len - at).min(max)),
                }
            }
        }
    }

    /// Every byte of the window, when it keeps them all in one slice (a scatter window keeps
    /// no copy of its gaps).
    pub fn contiguous(&self) -> Option<&[u8]> {
        match self {
            Window::Contiguous(buf) => Some(buf),
            Window::Scatter(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Window bytes are their own positions (mod 251), so a misplaced byte shows.
    fn window_bytes(range: std::ops::Range<usize>) -> Vec<u8> {
        range.map(|i| (i % 251) as u8).collect()
    }

    #[test]
    fn scatter_keeps_the_pieces_bytes_and_drops_the_gaps() {
        let (mut a, mut b, mut c) = ([0u8; 4], [0u8; 3], [0u8; 5]);
        {
            let mut w = Window::Scatter(Scatter::new(20, [(2, &mut a[..]), (6, &mut b[..]), (15, &mut c[..])]));
            // In uneven chunks, some inside a gap, some across several pieces.
            let all = window_bytes(0..20);
            for (lo, hi) in [(0, 1), (1, 7), (7, 14), (14, 15), (15, 20)] {
                w.write(lo, &all[lo..hi]);
            }
        }
        assert_eq!(a.to_vec(), window_bytes(2..6));
        assert_eq!(b.to_vec(), window_bytes(6..9));
        assert_eq!(c.to_vec(), window_bytes(15..20));
    }

    #[test]
    fn split_scatter_windows_put_each_byte_where_the_whole_would() {
        for mid in 0..=20 {
            let (mut a, mut b, mut c) = ([0u8; 4], [0u8; 3], [0u8; 5]);
            {
                let w = Window::Scatter(Scatter::new(20, [(2, &mut a[..]), (6, &mut b[..]), (15, &mut c[..])]));
                let (mut head, mut tail) = w.split_at(mid);
                assert_eq!((head.len(), tail.len()), (mid, 20 - mid));
                let all = window_bytes(0..20);
                // The second half first: parts finish in any order.
                tail.write(0, &all[mid..]);
                head.write(0, &all[..mid]);
                assert_eq!(head.keeps_bytes(), mid > 2, "mid {mid}");
                assert_eq!(tail.keeps_bytes(), mid < 20, "mid {mid}");
            }
            assert_eq!(a.to_vec(), window_bytes(2..6), "mid {mid}");
            assert_eq!(b.to_vec(), window_bytes(6..9), "mid {mid}");
            assert_eq!(c.to_vec(), window_bytes(15..20), "mid {mid}");
        }
    }

    #[test]
    fn contiguous_windows_split_and_write_like_slices() {
        let mut buf = [0u8; 10];
        let (mut head, mut tail) = Window::Contiguous(&mut buf).split_at(4);
        tail.write(1, b"xyz");
        head.write(0, b"abcd");
        assert_eq!(head.contiguous(), Some(&b"abcd"[..]));
        assert_eq!(&buf, b"abcd\0xyz\0\0");
    }

    #[test]
    fn regions_name_the_slice_or_gap_holding_a_position() {
        let (mut a, mut b) = ([0u8; 4], [0u8; 3]);
        let mut w = Window::Scatter(Scatter::new(20, [(2, &mut a[..]), (6, &mut b[..])]));
        let describe = |r: Region<'_>| match r {
            Region::Kept(s) => format!("kept {}", s.len()),
            Region::Dropped(n) => format!("dropped {n}"),
        };
        assert_eq!(describe(w.region_at(0, 100)), "dropped 2");
        assert_eq!(describe(w.region_at(3, 100)), "kept 3");
        assert_eq!(describe(w.region_at(3, 2)), "kept 2");
        assert_eq!(describe(w.region_at(6, 100)), "kept 3");
        assert_eq!(describe(w.region_at(9, 100)), "dropped 11");
        assert_eq!(describe(w.region_at(9, 4)), "dropped 4");
        if let Region::Kept(s) = w.region_at(7, 100) {
            s.copy_from_slice(b"yz");
        }
        drop(w);
        assert_eq!(&b, b"\0yz");
        let mut buf = [0u8; 10];
        let mut c = Window::Contiguous(&mut buf);
        assert_eq!(describe(c.region_at(4, 100)), "kept 6");
        assert_eq!(describe(c.region_at(4, 5)), "kept 5");
    }

    #[test]
    #[should_panic(expected = "overlap")]
    fn overlapping_pieces_are_refused() {
        let (mut a, mut b) = ([0u8; 4], [0u8; 4]);
        Scatter::new(10, [(0, &mut a[..]), (3, &mut b[..])]);
    }
}
