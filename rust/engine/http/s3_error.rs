//! An S3 error response: its code and message (from the XML body, or from the status for
//! bodiless responses such as HEAD), and the region it says the bucket is in.

use crate::error::{code_for_bodiless, default_message, kind_for, Error};
use http::{HeaderMap, StatusCode};
use quick_xml::events::Event;
use quick_xml::Reader;

/// A non-2xx response, parsed.
pub(super) struct Failure {
    pub error: Error,
    status: StatusCode,
    /// `x-amz-bucket-region`, else the body's `<Region>`.
    region: Option<String>,
}

impl Failure {
    pub fn new(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Failure {
        let fields = ErrorFields::parse(body);
        let http_status = status.as_u16();
        let code = fields.code.filter(|c| !c.is_empty()).unwrap_or_else(|| code_for_bodiless(http_status).to_string());
        let message = fields.message.filter(|m| !m.is_empty()).unwrap_or_else(|| default_message(&code, http_status));
        let region = headers
            .get("x-amz-bucket-region")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .or(fields.region)
            .filter(|r| !r.is_empty());
        // S3 sends `x-amz-request-id`; some servers (moto) only the `x-amzn-requestid` of
        // AWS's other services; an error body may carry `<RequestId>`.
        let request_id = ["x-amz-request-id", "x-amzn-requestid"]
            .iter()
            .find_map(|name| headers.get(*name).and_then(|v| v.to_str().ok()))
            .map(str::to_string)
            .or(fields.request_id)
            .unwrap_or_default();
        let error = Error {
            kind: kind_for(&code, http_status),
            code,
            message,
            http_status,
            request_id,
            retry_on_fresh_connection: false,
        };
        Failure { error, status, region }
    }

    /// The region to send the request to instead, when this failure is S3 saying the bucket
    /// is elsewhere: a 301 PermanentRedirect (a bodiless 301 for HEAD), a 307, or a 400
    /// AuthorizationHeaderMalformed / IllegalLocationConstraintException naming the region.
    pub fn region_hint(&self) -> Option<&str> {
        let redirect = match self.status.as_u16() {
            301 | 307 => true,
            400 => matches!(
                self.error.code.as_str(),
                "AuthorizationHeaderMalformed" | "IllegalLocationConstraintException" | ""
            ) || self.error.code == code_for_bodiless(400),
            _ => false,
        };
        if redirect {
            self.region.as_deref()
        } else {
            None
        }
    }
}

/// The fields of `<Error><Code/><Message/><Region/></Error>` we use.
#[derive(Default)]
struct ErrorFields {
    code: Option<String>,
    message: Option<String>,
    region: Option<String>,
    request_id: Option<String>,
}

impl ErrorFields {
    /// Best effort: a body that is not S3's XML (a proxy's HTML page) yields nothing.
    fn parse(body: &[u8]) -> ErrorFields {
        let mut fields = ErrorFields::default();
        let text = String::from_utf8_lossy(body);
        let mut reader = Reader::from_str(&text);
        let mut path: Vec<String> = Vec::new();
        while let Ok(event) = reader.read_event() {
            let piece: std::borrow::Cow<'_, str> = match event {
                Event::Start(e) => {
                    path.push(e.local_name().as_ref().to_string());
                    continue;
                }
                Event::End(_) => {
                    path.pop();
                    continue;
                }
                Event::Eof => break,
                Event::Text(t) => t.xml10_content().into_owned().into(),
                Event::GeneralRef(r) if r.is_char_ref() => match r.resolve_char_ref() {
                    Ok(Some(c)) => c.to_string().into(),
                    _ => continue,
                },
                Event::GeneralRef(r) => {
                    let name = r.xml10_content();
                    quick_xml::escape::resolve_predefined_entity(&name).unwrap_or_default().into()
                }
                _ => continue,
            };
            if path.len() != 2 || path[0] != "Error" {
                continue;
            }
            let slot = match path[1].as_str() {
                "Code" => &mut fields.code,
                "Message" => &mut fields.message,
                "Region" => &mut fields.region,
                "RequestId" => &mut fields.request_id,
                _ => continue,
            };
            slot.get_or_insert_with(String::new).push_str(&piece);
        }
        for v in [&mut fields.code, &mut fields.message, &mut fields.region, &mut fields.request_id].into_iter().flatten() {
            *v = v.trim().to_string();
        }
        fields
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    fn failure(status: u16, headers: &[(&'static str, &str)], body: &str) -> Failure {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.insert(*k, v.parse().unwrap());
        }
        Failure::new(StatusCode::from_u16(status).unwrap(), &map, body.as_bytes())
    }

    #[test]
    fn code_and_message_come_from_the_xml_body() {
        let f = failure(
            404,
            &[],
            "<?xml version=\"1.0\"?><Error><Code>NoSuchKey</Code><Message>The key &amp; more</Message>\
             <Key>k</Key><RequestId>r</RequestId></Error>",
        );
        assert_eq!(f.error.code, "NoSuchKey");
        assert_eq!(f.error.message, "The key & more");
        assert_eq!(f.error.kind, ErrorKind::NoSuchKey);
        assert_eq!(f.error.request_id, "r");
        assert!(f.region_hint().is_none());
    }

    /// Bodiless responses (HEAD) carry the request id only in a header (`x-amz-request-id`,
    /// or moto's `x-amzn-requestid`), which wins over the body's `<RequestId>`.
    #[test]
    fn request_id_comes_from_the_header_else_the_body() {
        assert_eq!(failure(404, &[("x-amz-request-id", "H1")], "").error.request_id, "H1");
        let both = failure(403, &[("x-amz-request-id", "H2")], "<Error><RequestId>B2</RequestId></Error>");
        assert_eq!(both.error.request_id, "H2");
        assert_eq!(failure(404, &[("x-amzn-requestid", "M3")], "").error.request_id, "M3");
        assert_eq!(failure(500, &[], "").error.request_id, "");
    }

    #[test]
    fn bodiless_and_non_xml_responses_get_codes_from_the_status() {
        let f = failure(404, &[], "");
        assert_eq!((f.error.code.as_str(), f.error.kind), ("NotFound", ErrorKind::NoSuchKey));
        let f = failure(503, &[], "<html><body>Service Unavailable</body></html>");
        assert_eq!((f.error.code.as_str(), f.error.kind), ("SlowDown", ErrorKind::Throttled));
        let f = failure(500, &[], "not xml at all <<<");
        assert_eq!((f.error.code.as_str(), f.error.http_status), ("", 500));
    }

    #[test]
    fn wrong_region_answers_name_the_right_region() {
        let f = failure(301, &[("x-amz-bucket-region", "eu-west-1")], "");
        assert_eq!(f.region_hint(), Some("eu-west-1"));
        let f = failure(
            400,
            &[],
            "<Error><Code>AuthorizationHeaderMalformed</Code><Message>the region 'us-east-1' is wrong; \
             expecting 'eu-central-1'</Message><Region>eu-central-1</Region></Error>",
        );
        assert_eq!(f.region_hint(), Some("eu-central-1"));
        let f = failure(403, &[("x-amz-bucket-region", "eu-west-1")], "<Error><Code>AccessDenied</Code></Error>");
        assert_eq!(f.region_hint(), None);
    }
}
