//! Writes to a GCS *emulator* (`STORAGE_EMULATOR_HOST`) only.
//!
//! object_store writes GCS objects with the XML API (`PUT /bucket/object` with
//! `x-goog-if-generation-match`). fake-gcs-server serves the XML API for reads, heads and
//! listings, but refuses that PUT ("invalid uploadType"), and where it does accept an XML
//! PUT it ignores the generation precondition. It enforces `ifGenerationMatch` on JSON-API
//! multipart uploads. So, for an emulator, a single-shot object PUT is sent as the
//! equivalent JSON-API multipart upload with the same precondition, and the answer is
//! translated back into the two headers object_store reads (`ETag`,
//! `x-goog-generation`). Every other request passes through untouched, and real GCS
//! never goes through this service.

use async_trait::async_trait;
use bytes::Bytes;
use http::{HeaderValue, Method, StatusCode, header};
use http_body_util::BodyExt;
use object_store::ClientOptions;
use object_store::client::{
    HttpClient, HttpConnector, HttpError, HttpErrorKind, HttpRequest, HttpRequestBody, HttpResponse,
    HttpResponseBody, HttpService, ReqwestConnector,
};

const GENERATION_MATCH: &str = "x-goog-if-generation-match";

#[derive(Debug)]
pub(super) struct EmulatorConnector {
    /// The path of the emulator's base URL (usually empty), before `/bucket/object`.
    base_path: String,
}

impl EmulatorConnector {
    pub(super) fn new(base_url: &str) -> Self {
        let after_scheme = base_url.split_once("://").map_or(base_url, |(_, rest)| rest);
        let base_path = after_scheme.find('/').map_or("", |i| &after_scheme[i..]);
        EmulatorConnector { base_path: base_path.trim_end_matches('/').to_owned() }
    }
}

impl HttpConnector for EmulatorConnector {
    fn connect(&self, options: &ClientOptions) -> object_store::Result<HttpClient> {
        let inner = ReqwestConnector::default().connect(options)?;
        Ok(HttpClient::new(EmulatorService { inner, base_path: self.base_path.clone() }))
    }
}

#[derive(Debug)]
struct EmulatorService {
    inner: HttpClient,
    base_path: String,
}

#[async_trait]
impl HttpService for EmulatorService {
    async fn call(&self, req: HttpRequest) -> Result<HttpResponse, HttpError> {
        match object_put(&req, &self.base_path) {
            Some((bucket, object)) => self.upload(req, bucket, object).await,
            None => self.inner.execute(req).await,
        }
    }
}

/// `(bucket, object name)` when `req` is a single-shot XML-API object PUT: no query
/// (multipart parts carry `partNumber`/`uploadId`) and not a copy.
fn object_put(req: &HttpRequest, base_path: &str) -> Option<(String, String)> {
    if req.method() != Method::PUT
        || req.uri().query().is_some()
        || req.headers().contains_key("x-goog-copy-source")
    {
        return None;
    }
    let path = req.uri().path().strip_prefix(base_path)?.strip_prefix('/')?;
    let (bucket, object) = path.split_once('/')?;
    let decode = |s: &str| percent_encoding::percent_decode_str(s).decode_utf8().ok().map(|c| c.into_owned());
    Some((decode(bucket)?, decode(object).filter(|o| !o.is_empty())?))
}

fn http_error(kind: HttpErrorKind, e: impl std::error::Error + Send + Sync + 'static) -> HttpError {
    HttpError::new(kind, e)
}

impl EmulatorService {
    async fn upload(
        &self,
        req: HttpRequest,
        bucket: String,
        object: String,
    ) -> Result<HttpResponse, HttpError> {
        let (parts, body) = req.into_parts();
        let content = body.collect().await?.to_bytes();
        let content_type = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/octet-stream")
            .to_owned();
        let generation = parts.headers.get(GENERATION_MATCH).and_then(|v| v.to_str().ok());

        let metadata = serde_json::json!({ "name": object, "contentType": content_type }).to_string();
        let boundary = boundary_not_in(&content);
        let mut payload = Vec::with_capacity(content.len() + metadata.len() + 256);
        payload.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n{metadata}\r\n\
                 --{boundary}\r\nContent-Type: {content_type}\r\n\r\n"
            )
            .as_bytes(),
        );
        payload.extend_from_slice(&content);
        payload.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());

        let bucket = percent_encoding::utf8_percent_encode(&bucket, percent_encoding::NON_ALPHANUMERIC);
        let mut url = format!(
            "{}://{}{}/upload/storage/v1/b/{bucket}/o?uploadType=multipart",
            parts.uri.scheme_str().unwrap_or("http"),
            parts.uri.authority().map(|a| a.as_str()).unwrap_or_default(),
            self.base_path,
        );
        if let Some(generation) = generation {
            url.push_str(&format!("&ifGenerationMatch={generation}"));
        }
        let upload = http::Request::builder()
            .method(Method::POST)
            .uri(url)
            .header(header::CONTENT_TYPE, format!("multipart/related; boundary={boundary}"))
            .body(HttpRequestBody::from(payload))
            .map_err(|e| http_error(HttpErrorKind::Request, e))?;

        let response = self.inner.execute(upload).await?;
        let (head, body) = response.into_parts();
        let body = body.bytes().await?;
        if !head.status.is_success() {
            // 412 stays 412: object_store turns it into `Precondition`/`AlreadyExists`.
            return Ok(HttpResponse::from_parts(head, HttpResponseBody::from(body)));
        }
        let resource: ObjectResource =
            serde_json::from_slice(&body).map_err(|e| http_error(HttpErrorKind::Decode, e))?;
        let header = |v: String| HeaderValue::try_from(v).map_err(|e| http_error(HttpErrorKind::Decode, e));
        http::Response::builder()
            .status(StatusCode::OK)
            // Quoted, as the emulator's XML GET and HEAD return it.
            .header(header::ETAG, header(format!("\"{}\"", resource.etag))?)
            .header("x-goog-generation", header(resource.generation)?)
            .body(HttpResponseBody::from(Bytes::new()))
            .map_err(|e| http_error(HttpErrorKind::Decode, e))
    }
}

#[derive(serde::Deserialize)]
struct ObjectResource {
    generation: String,
    etag: String,
}

fn boundary_not_in(content: &[u8]) -> String {
    loop {
        let boundary = format!("buildstate-{:016x}", fastrand::u64(..));
        if !content.windows(boundary.len()).any(|w| w == boundary.as_bytes()) {
            return boundary;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(uri: &str) -> HttpRequest {
        http::Request::builder().method(Method::PUT).uri(uri).body(HttpRequestBody::empty()).expect("request")
    }

    #[test]
    fn only_single_shot_object_puts_are_translated() {
        let base = EmulatorConnector::new("http://127.0.0.1:4443").base_path;
        assert_eq!(
            object_put(&put("http://127.0.0.1:4443/b/p%2Faws%2Fn%2Fstate.json"), &base),
            Some(("b".into(), "p/aws/n/state.json".into()))
        );
        assert_eq!(object_put(&put("http://127.0.0.1:4443/b/o?partNumber=1&uploadId=x"), &base), None);
        assert_eq!(object_put(&put("http://127.0.0.1:4443/b"), &base), None);
        let get =
            http::Request::builder().uri("http://h/b/o").body(HttpRequestBody::empty()).expect("request");
        assert_eq!(object_put(&get, &base), None);
        let nested = EmulatorConnector::new("http://h:1/gcs/").base_path;
        assert_eq!(object_put(&put("http://h:1/gcs/b/o"), &nested), Some(("b".into(), "o".into())));
    }
}
