//! Parsing a ListObjectsV2 response body (`ListBucketResult`) straight into an [`ObjectPage`].
//!
//! The SDK still sends the request (signing, retries, errors); only a successful page's
//! body is taken before the SDK deserializes it (see `list::TakeListBody`) and parsed here
//! with quick-xml. Why: profiled on a 400,000-key listing, the SDK's XML deserializer (and
//! the `memcmp` of its tag matching) was about 90% of the client's CPU, and in a sequential
//! listing every millisecond of client CPU per page adds to the wall time. This reads only
//! what a page carries for us: keys, sizes, times, ETags, common prefixes, and the
//! truncation flag and continuation token.
//!
//! Keys arrive URL-encoded when the server honoured `encoding-type=url` (and says so with
//! `<EncodingType>url</EncodingType>`, which may come after the keys): they are decoded
//! then, and only then, since a server that ignores the request sends `%` and `+` as they
//! are. Text is taken without XML's end-of-line normalization: from a server that sends
//! keys raw, a CR in a key is a CR, not a line break to turn into LF.

use crate::error::{Error, Result};
use crate::page::{ObjectPage, StringTable};
use aws_smithy_types::date_time::{DateTime, Format};
use quick_xml::events::Event;
use quick_xml::Reader;

/// One parsed page.
#[derive(Debug, Default)]
pub struct ListPage {
    pub page: ObjectPage,
    pub is_truncated: bool,
    pub next_continuation_token: Option<String>,
}

/// The element whose text is being collected.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Field {
    Key,
    Size,
    LastModified,
    ETag,
    CommonPrefix,
    IsTruncated,
    NextContinuationToken,
    EncodingType,
}

#[derive(Default)]
struct Object {
    key: Option<String>,
    size: u64,
    last_modified: Option<DateTime>,
    etag: String,
}

pub fn parse_list_objects_v2(body: &[u8]) -> Result<ListPage> {
    let text = std::str::from_utf8(body).map_err(|e| bad(format!("not UTF-8: {e}")))?;
    let mut reader = Reader::from_str(text);
    // Keys may begin or end with spaces: keep text exactly as sent.
    reader.config_mut().trim_text(false);

    let mut out = ListPage::default();
    let mut depth = 0usize; // 1 = ListBucketResult, 2 = its children, 3 = inside Contents etc.
    let mut in_contents = false;
    let mut in_common_prefixes = false;
    let mut object = Object::default();
    let mut field: Option<Field> = None;
    let mut value = String::new();
    let mut saw_root = false;
    let mut url_encoded = false;
    loop {
        let event = reader.read_event().map_err(|e| bad(format!("at byte {}: {e}", reader.buffer_position())))?;
        match event {
            Event::Start(start) => {
                depth += 1;
                let name = start.local_name();
                let name = name.as_ref();
                field = None;
                match depth {
                    1 if name != "ListBucketResult" => return Err(bad(format!("root element is {name}"))),
                    1 => saw_root = true,
                    2 => match name {
                        "Contents" => {
                            in_contents = true;
                            object = Object::default();
                        }
                        "CommonPrefixes" => in_common_prefixes = true,
                        "IsTruncated" => field = Some(Field::IsTruncated),
                        "NextContinuationToken" => field = Some(Field::NextContinuationToken),
                        "EncodingType" => field = Some(Field::EncodingType),
                        _ => {}
                    },
                    3 if in_contents => {
                        field = match name {
                            "Key" => Some(Field::Key),
                            "Size" => Some(Field::Size),
                            "LastModified" => Some(Field::LastModified),
                            "ETag" => Some(Field::ETag),
                            _ => None,
                        }
                    }
                    3 if in_common_prefixes && name == "Prefix" => field = Some(Field::CommonPrefix),
                    _ => {}
                }
                value.clear();
            }
            Event::Text(t) if field.is_some() => value.push_str(&t),
            Event::CData(c) if field.is_some() => value.push_str(&c),
            Event::GeneralRef(r) if field.is_some() => {
                if r.is_char_ref() {
                    let c = r.resolve_char_ref().map_err(|e| bad(e.to_string()))?;
                    value.push(c.ok_or_else(|| bad("empty character reference"))?);
                } else {
                    let name = r.xml10_content();
                    let resolved = quick_xml::escape::resolve_predefined_entity(&name)
                        .ok_or_else(|| bad(format!("unknown entity &{name};")))?;
                    value.push_str(resolved);
                }
            }
            Event::End(_) => {
                if let Some(f) = field.take() {
                    if f == Field::EncodingType {
                        url_encoded = value.trim() == "url";
                    } else {
                        store(f, std::mem::take(&mut value), &mut object, &mut out)?;
                    }
                } else if depth == 2 && in_contents {
                    let key = object.key.take().ok_or_else(|| bad("Contents without a Key"))?;
                    out.page.push_object(&key, object.size, object.last_modified.as_ref(), &object.etag, "");
                    in_contents = false;
                } else if depth == 2 && in_common_prefixes {
                    in_common_prefixes = false;
                }
                depth = depth.checked_sub(1).ok_or_else(|| bad("unbalanced end tag"))?;
            }
            // <ListBucketResult/>: an empty listing. Elsewhere (e.g. <Owner/>) nothing we read.
            Event::Empty(e) if depth == 0 => {
                let name = e.local_name();
                if name.as_ref() != "ListBucketResult" {
                    return Err(bad(format!("root element is {}", name.as_ref())));
                }
                saw_root = true;
            }
            Event::Empty(_) => {}
            Event::Eof => break,
            _ => {}
        }
    }
    if depth != 0 {
        return Err(bad("truncated document"));
    }
    if !saw_root {
        // An empty or root-less 200 must not pass for the last page of a listing.
        return Err(bad("no ListBucketResult element"));
    }
    if url_encoded {
        out.page.keys = url_decode_all(std::mem::take(&mut out.page.keys), "Key")?;
        out.page.common_prefixes = url_decode_all(std::mem::take(&mut out.page.common_prefixes), "Prefix")?;
    }
    Ok(out)
}

/// Every string of `table` URL-decoded (`field` names them in errors).
fn url_decode_all(table: StringTable, field: &str) -> Result<StringTable> {
    if !table.data.iter().any(|&b| b == b'%' || b == b'+') {
        return Ok(table); // nothing encoded: the common case, no copy
    }
    let mut decoded = StringTable::default();
    for i in 0..table.len() {
        let raw = table.get(i);
        let text = url_decode(raw).ok_or_else(|| bad(format!("{field} {raw:?} is not valid URL encoding")))?;
        if text.contains('\0') {
            // Strings cross the C ABI NUL-terminated: such a key cannot be represented.
            return Err(bad(format!("{field} {raw:?} decodes to a string holding NUL")));
        }
        decoded.push(&text);
    }
    Ok(decoded)
}

/// Decode S3's `encoding-type=url` form, as boto3 does (`unquote_plus`): `%XX` is a byte,
/// `+` a space. None when a `%` is not followed by two hex digits or the bytes are not UTF-8.
fn url_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

fn store(field: Field, value: String, object: &mut Object, out: &mut ListPage) -> Result<()> {
    match field {
        Field::Key => object.key = Some(value),
        Field::Size => {
            object.size = value.trim().parse().map_err(|_| bad(format!("Size {value:?}")))?;
        }
        Field::LastModified => {
            let parsed = DateTime::from_str(value.trim(), Format::DateTime)
                .map_err(|e| bad(format!("LastModified {value:?}: {e}")))?;
            object.last_modified = Some(parsed);
        }
        Field::ETag => object.etag = value,
        Field::CommonPrefix => out.page.common_prefixes.push(&value),
        Field::IsTruncated => out.is_truncated = value.trim() == "true",
        Field::NextContinuationToken => out.next_continuation_token = Some(value),
        Field::EncodingType => {}
    }
    Ok(())
}

fn bad(what: impl std::fmt::Display) -> Error {
    Error::protocol(format!("cannot parse the ListObjectsV2 response: {what}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>bkt</Name><Prefix>a/</Prefix><KeyCount>3</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>true</IsTruncated><NextContinuationToken>tok&amp;en==</NextContinuationToken>
  <Contents><Key>a/ x&lt;y&gt; &amp; &#233;&#x4E2D; </Key><LastModified>2026-11-27T09:12:13.456Z</LastModified><ETag>&quot;abc&quot;</ETag><ChecksumAlgorithm>CRC32</ChecksumAlgorithm><Size>12</Size><Owner><ID>x</ID></Owner><StorageClass>STANDARD</StorageClass></Contents>
  <Contents><Key>a/plain</Key><LastModified>2026-01-01T00:00:00.000Z</LastModified><ETag>"e2"</ETag><Size>0</Size><StorageClass/></Contents>
  <CommonPrefixes><Prefix>a/dir/</Prefix></CommonPrefixes><CommonPrefixes><Prefix>a/z/</Prefix></CommonPrefixes>
</ListBucketResult>"#;

    #[test]
    fn reads_objects_prefixes_and_token_and_unescapes_text() {
        let parsed = parse_list_objects_v2(PAGE.as_bytes()).unwrap();
        let p = &parsed.page;
        assert_eq!(p.len(), 2);
        assert_eq!(p.keys.get(0), "a/ x<y> & é中 ", "entities and spaces kept exactly");
        assert_eq!(p.keys.get(1), "a/plain");
        assert_eq!(p.sizes, vec![12, 0]);
        assert_eq!(p.etags.get(0), "\"abc\"");
        assert_eq!(p.last_modified_ms[0], 1_795_770_733_456);
        assert_eq!(p.common_prefixes.len(), 2);
        assert_eq!(p.common_prefixes.get(1), "a/z/");
        assert!(parsed.is_truncated);
        assert_eq!(parsed.next_continuation_token.as_deref(), Some("tok&en=="));
    }

    #[test]
    fn root_prefix_is_not_a_common_prefix_and_last_page_has_no_token() {
        let xml = "<ListBucketResult><Prefix>p/</Prefix><IsTruncated>false</IsTruncated></ListBucketResult>";
        let parsed = parse_list_objects_v2(xml.as_bytes()).unwrap();
        assert!(parsed.page.is_empty() && parsed.page.common_prefixes.is_empty());
        assert!(!parsed.is_truncated && parsed.next_continuation_token.is_none());
        let empty = parse_list_objects_v2(b"<ListBucketResult/>").unwrap();
        assert!(empty.page.is_empty() && !empty.is_truncated);
    }

    #[test]
    fn escaped_carriage_returns_survive() {
        let xml = "<ListBucketResult><Contents><Key>a&#13;b&#xD;</Key><Size>1</Size></Contents></ListBucketResult>";
        assert_eq!(parse_list_objects_v2(xml.as_bytes()).unwrap().page.keys.get(0), "a\rb\r");
    }

    #[test]
    fn raw_carriage_returns_are_kept_not_normalized() {
        // A server that ignores encoding-type may send a CR (or CRLF) in a key as it is.
        let xml = "<ListBucketResult><Contents><Key>a\rb\r\nc\r</Key><Size>1</Size></Contents></ListBucketResult>";
        assert_eq!(parse_list_objects_v2(xml.as_bytes()).unwrap().page.keys.get(0), "a\rb\r\nc\r");
    }

    #[test]
    fn url_encoded_keys_and_prefixes_are_decoded_when_the_server_says_so() {
        // EncodingType after the keys, as moto sends it; '+' is a space, %2B a '+'.
        let xml = "<ListBucketResult><Contents><Key>a%0Db%0D%0A%01+x%2B%25%E4%B8%AD</Key><Size>1</Size></Contents>\
                   <Contents><Key>plain</Key><Size>2</Size></Contents>\
                   <CommonPrefixes><Prefix>d%0D/</Prefix></CommonPrefixes>\
                   <EncodingType>url</EncodingType></ListBucketResult>";
        let page = parse_list_objects_v2(xml.as_bytes()).unwrap().page;
        assert_eq!(page.keys.get(0), "a\rb\r\n\u{1} x+%中");
        assert_eq!(page.keys.get(1), "plain");
        assert_eq!(page.sizes, vec![1, 2]);
        assert_eq!(page.common_prefixes.get(0), "d\r/");
    }

    #[test]
    fn keys_are_not_decoded_when_the_server_did_not_encode() {
        let xml = "<ListBucketResult><Contents><Key>pct%41+plus</Key><Size>1</Size></Contents>\
                   <CommonPrefixes><Prefix>d%41/</Prefix></CommonPrefixes></ListBucketResult>";
        let page = parse_list_objects_v2(xml.as_bytes()).unwrap().page;
        assert_eq!(page.keys.get(0), "pct%41+plus");
        assert_eq!(page.common_prefixes.get(0), "d%41/");
    }

    #[test]
    fn bad_url_encoding_is_a_protocol_error() {
        for key in ["a%zz", "a%4", "a%", "%FF", "a%00b"] {
            let xml = format!("<ListBucketResult><EncodingType>url</EncodingType><Contents><Key>{key}</Key><Size>1</Size></Contents></ListBucketResult>");
            let err = parse_list_objects_v2(xml.as_bytes()).unwrap_err();
            assert_eq!(err.kind, crate::ErrorKind::Protocol, "{key}: {err}");
        }
    }

    #[test]
    fn malformed_pages_are_protocol_errors() {
        for xml in [
            "<Error><Code>x</Code></Error>",
            "<ListBucketResult><Contents><Key>k</Key><Size>big</Size></Contents></ListBucketResult>",
            "<ListBucketResult><Contents><Size>1</Size></Contents></ListBucketResult>",
            "<ListBucketResult><Contents><Key>k</Key>",
            "<ListBucketResult><Contents><Key>&bogus;</Key></Contents></ListBucketResult>",
            "",
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>",
            "<Error/>",
        ] {
            let err = parse_list_objects_v2(xml.as_bytes()).unwrap_err();
            assert_eq!(err.kind, crate::ErrorKind::Protocol, "{xml}: {err}");
        }
    }
}
