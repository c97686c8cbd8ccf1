//! Where a bucket's requests go and how they are signed: the SDK's endpoint rules
//! (`DefaultResolver`), run once per bucket and cached.

use crate::client::redact_userinfo;
use crate::error::{Error, ErrorKind, Result};
use aws_sdk_s3::config::endpoint::{DefaultResolver, Params, ResolveEndpoint};
use aws_smithy_http::label::{fmt_string, EncodingStrategy};
use aws_smithy_types::Document;
use futures_util::FutureExt;
use http::HeaderValue;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The client-wide inputs of the endpoint rules.
#[derive(Debug, Clone)]
pub(crate) struct EndpointConfig {
    pub region: String,
    pub endpoint_url: Option<String>,
    pub force_path_style: bool,
    pub use_fips: bool,
    pub use_dual_stack: bool,
}

/// Buckets resolved so far. Bounded: a process touching more buckets than this starts over.
const MAX_CACHED_BUCKETS: usize = 4096;

pub(super) struct Endpoints {
    config: EndpointConfig,
    resolver: DefaultResolver,
    resolved: Mutex<HashMap<String, Arc<Resolved>>>,
    /// Buckets a response placed in another region than the client's.
    regions: Mutex<HashMap<String, String>>,
}

/// One bucket's endpoint.
#[derive(Debug)]
pub(super) struct Resolved {
    /// URL that keys are appended to: `https://bucket.s3.region.amazonaws.com` or
    /// `http://127.0.0.1:9000/bucket`, without a trailing slash.
    pub(super) base: String,
    pub(super) host_header: HeaderValue,
    pub(super) host: String,
    pub signing_region: String,
    pub signing_name: String,
}

impl Endpoints {
    pub fn new(config: EndpointConfig) -> Endpoints {
        Endpoints {
            config,
            resolver: DefaultResolver::new(),
            resolved: Mutex::new(HashMap::new()),
            regions: Mutex::new(HashMap::new()),
        }
    }

    pub fn resolve(&self, bucket: &str) -> Result<Arc<Resolved>> {
        if let Some(hit) = self.resolved.lock().unwrap_or_else(|p| p.into_inner()).get(bucket) {
            return Ok(hit.clone());
        }
        let region = self.regions.lock().unwrap_or_else(|p| p.into_inner()).get(bucket).cloned();
        let resolved = Arc::new(self.run_rules(bucket, region.as_deref().unwrap_or(&self.config.region))?);
        let mut cache = self.resolved.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= MAX_CACHED_BUCKETS {
            cache.clear();
        }
        cache.insert(bucket.to_string(), resolved.clone());
        Ok(resolved)
    }

    /// A response said `bucket` lives in `region`: its requests go there from now on.
    pub fn move_bucket(&self, bucket: &str, region: &str) -> Result<()> {
        crate::client::check_region(region)
            .map_err(|_| Error::protocol(format!("the server named an invalid region {region:?} for the bucket")))?;
        self.regions.lock().unwrap_or_else(|p| p.into_inner()).insert(bucket.to_string(), region.to_string());
        self.resolved.lock().unwrap_or_else(|p| p.into_inner()).remove(bucket);
        Ok(())
    }

    fn run_rules(&self, bucket: &str, region: &str) -> Result<Resolved> {
        let c = &self.config;
        let mut params = Params::builder()
            .bucket(bucket)
            .region(region)
            .use_fips(c.use_fips)
            .use_dual_stack(c.use_dual_stack)
            .force_path_style(c.force_path_style);
        if let Some(url) = &c.endpoint_url {
            params = params.endpoint(url.clone());
        }
        let params = params.build().map_err(|e| Error::new(ErrorKind::Config, format!("endpoint parameters: {e}")))?;
        let endpoint = self
            .resolver
            .resolve_endpoint(&params)
            .now_or_never()
            .expect("the S3 endpoint rules resolve without waiting")
            .map_err(|e| Error::invalid(format!("no endpoint for bucket {bucket:?}: {e}")))?;
        let (signing_region, signing_name) = auth_scheme(endpoint.properties(), region)?;
        let base = endpoint.url().trim_end_matches('/').to_string();
        let uri: http::Uri = base
            .parse()
            .map_err(|e| Error::new(ErrorKind::Config, format!("endpoint {:?} is not a URL: {e}", redact_userinfo(&base))))?;
        let authority = uri.authority().map(|a| a.as_str()).unwrap_or_default();
        let default_port = match uri.scheme_str() {
            Some("https") => ":443",
            _ => ":80",
        };
        let host = authority.strip_suffix(default_port).unwrap_or(authority).to_string();
        let host_header = HeaderValue::from_str(&host)
            .map_err(|_| Error::new(ErrorKind::Config, format!("endpoint host {host:?} is not a valid Host header")))?;
        Ok(Resolved { base, host_header, host, signing_region, signing_name })
    }
}

/// The signing region and service name the rules chose. Only SigV4 is on the lean path:
/// S3 Express One Zone directory buckets (`sigv4-s3express`) and multi-region access points
/// (`sigv4a`) are refused with a clear error.
fn auth_scheme(
    properties: &HashMap<std::borrow::Cow<'static, str>, Document>,
    region: &str,
) -> Result<(String, String)> {
    let Some(Document::Array(schemes)) = properties.get("authSchemes") else {
        return Ok((region.to_string(), "s3".to_string()));
    };
    let field = |scheme: &HashMap<String, Document>, name: &str| match scheme.get(name) {
        Some(Document::String(s)) => Some(s.clone()),
        _ => None,
    };
    let mut refused = Vec::new();
    for scheme in schemes {
        let Document::Object(scheme) = scheme else { continue };
        match field(scheme, "name").as_deref() {
            Some("sigv4") => {
                return Ok((
                    field(scheme, "signingRegion").unwrap_or_else(|| region.to_string()),
                    field(scheme, "signingName").unwrap_or_else(|| "s3".to_string()),
                ))
            }
            Some(other) => refused.push(other.to_string()),
            None => {}
        }
    }
    Err(Error::new(
        ErrorKind::Config,
        format!(
            "this bucket needs the {} signing scheme (S3 Express directory buckets, multi-region \
             access points), which pyfasts3 does not support yet",
            refused.join("/")
        ),
    ))
}

impl Resolved {
    /// The URI of `key` (encoded as the SDK encodes its greedy `{Key+}` label), with a
    /// `versionId` query when a version is named.
    pub fn object_uri(&self, key: &str, version_id: Option<&str>) -> Result<http::Uri> {
        let mut uri = format!("{}/{}", self.base, fmt_string(key, EncodingStrategy::Greedy));
        if let Some(version) = version_id {
            uri.push_str("?versionId=");
            uri.push_str(&fmt_string(version, EncodingStrategy::Default));
        }
        uri.parse().map_err(|e| Error::invalid(format!("key {key:?} does not make a valid URI: {e}")))
    }

    /// The URI of `key` with `query` (already encoded, without `?`): an upload's part.
    pub fn object_uri_with_query(&self, key: &str, query: &str) -> Result<http::Uri> {
        let uri = format!("{}/{}?{query}", self.base, fmt_string(key, EncodingStrategy::Greedy));
        uri.parse().map_err(|e| Error::invalid(format!("key {key:?} does not make a valid URI: {e}")))
    }

    pub fn host_header(&self) -> HeaderValue {
        self.host_header.clone()
    }

    pub fn host(&self) -> &str {
        &self.host
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoints(url: Option<&str>, path_style: bool) -> Endpoints {
        Endpoints::new(EndpointConfig {
            region: "us-east-1".into(),
            endpoint_url: url.map(str::to_string),
            force_path_style: path_style,
            use_fips: false,
            use_dual_stack: false,
        })
    }

    #[test]
    fn aws_buckets_are_virtual_hosted_and_keys_encoded_like_the_sdk() {
        let e = endpoints(None, false).resolve("my-bucket").unwrap();
        assert_eq!(e.host(), "my-bucket.s3.us-east-1.amazonaws.com");
        assert_eq!((e.signing_region.as_str(), e.signing_name.as_str()), ("us-east-1", "s3"));
        assert_eq!(
            e.object_uri("a b/c+d%e?f#g~h", None).unwrap().to_string(),
            "https://my-bucket.s3.us-east-1.amazonaws.com/a%20b/c%2Bd%25e%3Ff%23g~h"
        );
    }

    #[test]
    fn custom_endpoints_keep_their_port_and_use_path_style_when_asked() {
        let e = endpoints(Some("http://127.0.0.1:9000"), true).resolve("b").unwrap();
        assert_eq!(e.object_uri("k/x", None).unwrap().to_string(), "http://127.0.0.1:9000/b/k/x");
        assert_eq!(
            e.object_uri("k", Some("3/L4kqtJl+x=")).unwrap().to_string(),
            "http://127.0.0.1:9000/b/k?versionId=3%2FL4kqtJl%2Bx%3D"
        );
        assert_eq!(e.host_header(), "127.0.0.1:9000");
    }

    #[test]
    fn a_moved_bucket_is_resolved_in_its_region() {
        let endpoints = endpoints(None, false);
        endpoints.resolve("bucket-b").unwrap();
        endpoints.move_bucket("bucket-b", "eu-west-1").unwrap();
        let e = endpoints.resolve("bucket-b").unwrap();
        assert_eq!(e.signing_region, "eu-west-1");
        assert_eq!(e.host(), "bucket-b.s3.eu-west-1.amazonaws.com");
        assert!(endpoints.move_bucket("bucket-b", "bad region!").is_err());
    }
}
