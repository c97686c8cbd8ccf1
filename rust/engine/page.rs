//! `ObjectPage`: object metadata in a compact, columnar form that crosses the C ABI as a
//! handful of arrays (and turns into Python objects with a few bulk operations).

use aws_smithy_types::DateTime;

/// Many strings in one allocation. String `i` is `data[offsets[i]..offsets[i+1] - 1]`; every
/// string is followed by a NUL byte (so C can use `data + offsets[i]` as a C string, and
/// Python can split the whole blob on NUL at once). `offsets` has `len() + 1` entries.
#[derive(Debug, Clone)]
pub struct StringTable {
    pub data: Vec<u8>,
    pub offsets: Vec<usize>,
}

impl Default for StringTable {
    fn default() -> Self {
        StringTable { data: Vec::new(), offsets: vec![0] }
    }
}

impl StringTable {
    pub fn push(&mut self, s: &str) {
        self.data.extend_from_slice(s.as_bytes());
        self.data.push(0);
        self.offsets.push(self.data.len());
    }

    /// Move every string of `other` onto the end of this table.
    pub fn append(&mut self, other: StringTable) {
        let base = self.data.len();
        self.data.extend_from_slice(&other.data);
        self.offsets.extend(other.offsets[1..].iter().map(|o| o + base));
    }

    pub fn len(&self) -> usize {
        self.offsets.len() - 1
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn get(&self, i: usize) -> &str {
        let bytes = &self.data[self.offsets[i]..self.offsets[i + 1] - 1];
        // Only ever filled from &str, so this cannot fail.
        std::str::from_utf8(bytes).unwrap_or_default()
    }
}

/// Sentinel for "the server did not say" in `last_modified_ms`.
pub const UNKNOWN_TIME: i64 = i64::MIN;

/// Metadata of a set of objects (one page of a listing, or the single object of a HEAD),
/// plus, for listings with a delimiter, the common prefixes.
#[derive(Debug, Clone, Default)]
pub struct ObjectPage {
    pub keys: StringTable,
    pub sizes: Vec<u64>,
    /// Milliseconds since the Unix epoch, UTC; [`UNKNOWN_TIME`] when absent.
    pub last_modified_ms: Vec<i64>,
    /// As the server sent them, quotes included.
    pub etags: StringTable,
    /// Filled by HEAD; empty strings in listings (ListObjectsV2 does not return it).
    pub content_types: StringTable,
    pub common_prefixes: StringTable,
}

impl ObjectPage {
    pub fn push_object(&mut self, key: &str, size: u64, last_modified: Option<&DateTime>, etag: &str, content_type: &str) {
        self.keys.push(key);
        self.sizes.push(size);
        self.last_modified_ms.push(last_modified.map(to_millis).unwrap_or(UNKNOWN_TIME));
        self.etags.push(etag);
        self.content_types.push(content_type);
    }

    /// Copy object `i` of `other` onto the end of this page.
    pub fn push_from(&mut self, other: &ObjectPage, i: usize) {
        self.keys.push(other.keys.get(i));
        self.sizes.push(other.sizes[i]);
        self.last_modified_ms.push(other.last_modified_ms[i]);
        self.etags.push(other.etags.get(i));
        self.content_types.push(other.content_types.get(i));
    }

    /// Move every object and common prefix of `other` onto the end of this page.
    pub fn append(&mut self, other: ObjectPage) {
        self.keys.append(other.keys);
        self.sizes.extend(other.sizes);
        self.last_modified_ms.extend(other.last_modified_ms);
        self.etags.append(other.etags);
        self.content_types.append(other.content_types);
        self.common_prefixes.append(other.common_prefixes);
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

fn to_millis(t: &DateTime) -> i64 {
    t.secs() * 1000 + i64::from(t.subsec_nanos() / 1_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_table_layout_is_nul_separated_with_offsets() {
        let mut t = StringTable::default();
        t.push("a");
        t.push("");
        t.push("héllo");
        assert_eq!(t.len(), 3);
        assert_eq!(t.data, b"a\0\0h\xc3\xa9llo\0");
        assert_eq!(t.offsets, vec![0, 2, 3, 10]);
        assert_eq!(t.get(2), "héllo");
        assert_eq!(t.get(1), "");
        let mut more = StringTable::default();
        more.push("xy");
        t.append(more);
        assert_eq!((t.len(), t.get(3), t.get(2)), (4, "xy", "héllo"));
        assert_eq!(*t.offsets.last().unwrap(), t.data.len());
    }

    #[test]
    fn millis_keep_subsecond_precision() {
        let t = DateTime::from_secs_and_nanos(1_700_000_000, 123_456_789);
        assert_eq!(to_millis(&t), 1_700_000_000_123);
    }
}
