//! `ApiError`: every failure of a handler, mapped to a status code and the
//! JSON body `{ "error": "...", "code": "..." }`. 5xx answers carry a generic
//! message; their cause is logged inside the request span.
//!
//! The extractors [`Json`], [`Query`] and [`Path`] wrap axum's so that a
//! request they cannot read is refused in that same format (axum's own
//! answer plain text); handlers use these, never axum's.

use std::any::Any;

use axum::extract::path::ErrorKind;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{FromRequest, FromRequestParts, RawPathParams, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use storage::model::ErrorBody;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request cannot be read (malformed JSON, bad parameter).
    #[error("{0}")]
    BadRequest(String),
    /// 401: no valid session or token.
    #[error("{0}")]
    Unauthorized(String),
    /// 401: the password was right; a two-factor code is needed (or was
    /// wrong). Its own code, so a client knows to ask for one.
    #[error("{0}")]
    TwoFactorRequired(String),
    /// 403: authenticated, but not allowed.
    #[error("{0}")]
    Forbidden(String),
    /// 403: the session may do nothing but choose a new password (after a
    /// one-time password or an admin's reset). Its own code, so a client
    /// knows to ask for one.
    #[error("{0}")]
    PasswordChangeRequired(String),
    /// 403: two-factor log-in is required on this server and the user has
    /// not set it up: nothing else until they do.
    #[error("{0}")]
    TwoFactorSetupRequired(String),
    /// 404: missing, or someone else's (the two look the same).
    #[error("{0}")]
    NotFound(String),
    /// 405: the path exists, the method does not (`Allow` says which do).
    #[error("{0}")]
    MethodNotAllowed(String),
    /// 409: conflicts with what exists.
    #[error("{0}")]
    Conflict(String),
    /// 410: a single-use or time-limited link that is used up or expired.
    #[error("{0}")]
    Gone(String),
    /// 413: body over the limit.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// 415: a body we cannot decode.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 421: the `Host` header names no address of this server (DNS
    /// rebinding defence, see `crate::security`).
    #[error("{0}")]
    MisdirectedRequest(String),
    /// 422: well-formed but invalid values; the message names the field.
    #[error("{0}")]
    Invalid(String),
    /// 429: slow down; `retry_after_s` goes into `Retry-After`.
    #[error("{message}")]
    TooManyRequests { message: String, retry_after_s: u64 },
    /// 503: a part of the server is not available (shutting down, storage down).
    #[error("{0}")]
    Unavailable(String),
    /// 503: the server is busy with others' work of this kind; `retry_after_s`
    /// goes into `Retry-After`.
    #[error("{message}")]
    Busy { message: String, retry_after_s: u64 },
    /// 507: the server's disk is (nearly) full; nothing was stored.
    #[error("{0}")]
    InsufficientStorage(String),
    /// 500: a bug or an I/O failure. The cause is logged, not sent.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::TwoFactorRequired(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_)
            | ApiError::PasswordChangeRequired(_)
            | ApiError::TwoFactorSetupRequired(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::MisdirectedRequest(_) => StatusCode::MISDIRECTED_REQUEST,
            ApiError::Gone(_) => StatusCode::GONE,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) | ApiError::Busy { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::InsufficientStorage(_) => StatusCode::INSUFFICIENT_STORAGE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A stable machine-readable code for the body.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad_request",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::TwoFactorRequired(_) => "two_factor_required",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::PasswordChangeRequired(_) => "password_change_required",
            ApiError::TwoFactorSetupRequired(_) => "two_factor_setup_required",
            ApiError::NotFound(_) => "not_found",
            ApiError::MethodNotAllowed(_) => "method_not_allowed",
            ApiError::Conflict(_) => "conflict",
            ApiError::MisdirectedRequest(_) => "misdirected_request",
            ApiError::Gone(_) => "gone",
            ApiError::PayloadTooLarge(_) => "payload_too_large",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::Invalid(_) => "invalid",
            ApiError::TooManyRequests { .. } => "rate_limited",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Busy { .. } => "busy",
            ApiError::InsufficientStorage(_) => "insufficient_storage",
            ApiError::Internal(_) => "internal",
        }
    }

    /// Wraps any error as a 500.
    pub fn internal(e: impl Into<anyhow::Error>) -> ApiError {
        ApiError::Internal(e.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = match &self {
            ApiError::Internal(cause) => {
                tracing::error!(error = format!("{cause:#}"), "internal error");
                "internal server error; the cause is in the server log".to_string()
            }
            ApiError::Unavailable(msg) => {
                tracing::warn!(error = %msg, "service unavailable");
                msg.clone()
            }
            other => other.to_string(),
        };
        let body = ErrorBody {
            error: message,
            code: self.code().to_string(),
        };
        let mut response = (status, axum::Json(body)).into_response();
        if let ApiError::TooManyRequests { retry_after_s, .. }
        | ApiError::Busy { retry_after_s, .. } = self
            && let Ok(value) = HeaderValue::from_str(&retry_after_s.max(1).to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}

/// `axum::Json`, but rejections answer in our error format: 400 for syntax,
/// 422 for a well-formed body with wrong fields, 413 over the size limit.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<S, T> FromRequest<S> for Json<T>
where
    axum::Json<T>: FromRequest<S, Rejection = JsonRejection>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Json(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

impl<T: serde::Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::JsonDataError(e) => ApiError::Invalid(e.body_text()),
        JsonRejection::JsonSyntaxError(e) => ApiError::BadRequest(e.body_text()),
        JsonRejection::MissingJsonContentType(_) => ApiError::UnsupportedMediaType(
            "expected a body with `Content-Type: application/json`".into(),
        ),
        JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::PayloadTooLarge("request body is too large".into())
        }
        other => ApiError::BadRequest(other.body_text()),
    }
}

/// `axum::extract::Query`, but a query string that does not fit `T` is a
/// 400 in our format naming the parameter (`start: duplicate field` …).
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

impl<S, T> FromRequestParts<S> for Query<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parse_query(parts.uri.query().unwrap_or_default()).map(Query)
    }
}

/// Decodes a query string into `T`; the error names the parameter that did
/// not fit where serde can tell.
pub fn parse_query<T: serde::de::DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path.is_empty() || path == "." {
            ApiError::BadRequest(format!("query string: {inner}"))
        } else {
            ApiError::BadRequest(format!("query parameter `{path}`: {inner}"))
        }
    })
}

/// `axum::extract::Path`, but a segment that does not fit `T` (a word
/// where an id goes) is a 400 in our format naming the parameter.
#[derive(Debug, Clone, Copy, Default)]
pub struct Path<T>(pub T);

impl<S, T> FromRequestParts<S> for Path<T>
where
    T: serde::de::DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Path(value)),
            Err(rejection) => {
                let raw = RawPathParams::from_request_parts(parts, state).await.ok();
                Err(path_rejection(rejection, raw.as_ref()))
            }
        }
    }
}

fn path_rejection(rejection: PathRejection, raw: Option<&RawPathParams>) -> ApiError {
    let PathRejection::FailedToDeserializePathParams(e) = rejection else {
        // A route whose handler wants parameters its path does not have:
        // a bug, not the client's fault.
        return ApiError::internal(anyhow::anyhow!("{}", rejection.body_text()));
    };
    // The name of the segment holding `value` (tuples and plain values do
    // not carry it).
    let name_of = |value: &str| {
        raw.and_then(|r| {
            r.iter()
                .find(|(_, v)| *v == value)
                .map(|(k, _)| k.to_string())
        })
        .unwrap_or_else(|| "id".to_string())
    };
    let expected = |t: &str| match t {
        "u8" | "u16" | "u32" | "u64" | "usize" => "a whole number",
        "i8" | "i16" | "i32" | "i64" | "isize" => "a whole number",
        "f32" | "f64" => "a number",
        _ => "a valid value",
    };
    match e.into_kind() {
        ErrorKind::ParseErrorAtKey {
            key,
            value,
            expected_type,
        } => ApiError::BadRequest(format!(
            "path parameter `{key}`: `{}` is not {}",
            clip(&value),
            expected(expected_type)
        )),
        ErrorKind::ParseErrorAtIndex {
            value,
            expected_type,
            ..
        }
        | ErrorKind::ParseError {
            value,
            expected_type,
        } => ApiError::BadRequest(format!(
            "path parameter `{}`: `{}` is not {}",
            name_of(&value),
            clip(&value),
            expected(expected_type)
        )),
        ErrorKind::InvalidUtf8InPathParam { key } => {
            ApiError::BadRequest(format!("path parameter `{key}`: not valid UTF-8"))
        }
        ErrorKind::DeserializeError {
            key,
            value,
            message,
        } => ApiError::BadRequest(format!(
            "path parameter `{key}`: `{}`: {message}",
            clip(&value)
        )),
        other => ApiError::BadRequest(format!("path: {other}")),
    }
}

/// At most 64 characters of a value echoed back in an error.
fn clip(value: &str) -> String {
    let mut out: String = value.chars().take(64).collect();
    if out.len() < value.len() {
        out.push('…');
    }
    out
}

/// The answer to a method a path does not have (the router's
/// `method_not_allowed_fallback`; axum still adds `Allow`).
pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed(
        "this path does not take that method; `Allow` lists the ones it takes".into(),
    )
}

/// The answer when a handler panicked (`CatchPanicLayer`): logged with the
/// panic's message inside the request span, then the usual 500 body; the
/// connection and the server carry on.
pub fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("(no message)");
    ApiError::internal(anyhow::anyhow!("handler panicked: {message}")).into_response()
}

pub type ApiResult<T> = Result<T, ApiError>;
