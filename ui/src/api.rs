//! The browser side of the JSON API: `fetch` with the session cookie, JSON in
//! and out, and errors a person can read. On the server (SSR) these calls are
//! never made: actions and local resources only run after hydration.

use serde::de::DeserializeOwned;
use std::fmt;

/// A failed API call, as shown to the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status, 0 when the request never got an answer.
    pub status: u16,
    pub message: String,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.status == 0 {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{} (HTTP {})", self.message, self.status)
        }
    }
}

impl std::error::Error for ApiError {}

/// GET `path` and decode the JSON answer.
pub async fn get_json<T: DeserializeOwned>(path: &str) -> Result<T, ApiError> {
    request("GET", path, None).await
}

/// POST `body` as JSON to `path` and decode the JSON answer.
pub async fn post_json<T: DeserializeOwned>(
    path: &str,
    body: &impl serde::Serialize,
) -> Result<T, ApiError> {
    let body = serde_json::to_string(body).map_err(|e| ApiError {
        status: 0,
        message: format!("could not encode the request: {e}"),
    })?;
    request("POST", path, Some(body)).await
}

#[cfg(feature = "hydrate")]
async fn request<T: DeserializeOwned>(
    method: &str,
    path: &str,
    body: Option<String>,
) -> Result<T, ApiError> {
    use wasm_bindgen::JsCast;
    use wasm_bindgen_futures::JsFuture;

    let network = |what: &str| ApiError {
        status: 0,
        message: format!("{what}: the server could not be reached"),
    };
    let init = web_sys::RequestInit::new();
    init.set_method(method);
    init.set_credentials(web_sys::RequestCredentials::SameOrigin);
    if let Some(body) = body {
        init.set_body(&wasm_bindgen::JsValue::from_str(&body));
    }
    let request =
        web_sys::Request::new_with_str_and_init(path, &init).map_err(|_| network("bad request"))?;
    let headers = request.headers();
    let _ = headers.set("Accept", "application/json");
    let _ = headers.set("Content-Type", "application/json");
    let window = web_sys::window().ok_or_else(|| network("no window"))?;
    let response: web_sys::Response = JsFuture::from(window.fetch_with_request(&request))
        .await
        .map_err(|_| network(path))?
        .dyn_into()
        .map_err(|_| network(path))?;
    let status = response.status();
    let text = JsFuture::from(response.text().map_err(|_| network(path))?)
        .await
        .map_err(|_| network(path))?
        .as_string()
        .unwrap_or_default();
    if response.ok() {
        serde_json::from_str(&text).map_err(|e| ApiError {
            status,
            message: format!("unexpected answer from {path}: {e}"),
        })
    } else {
        let message = serde_json::from_str::<storage::model::ErrorBody>(&text)
            .map(|b| b.error)
            .unwrap_or_else(|_| format!("{path} failed"));
        Err(ApiError { status, message })
    }
}

#[cfg(not(feature = "hydrate"))]
async fn request<T: DeserializeOwned>(
    _method: &str,
    path: &str,
    _body: Option<String>,
) -> Result<T, ApiError> {
    Err(ApiError {
        status: 0,
        message: format!("{path} can only be fetched from the browser"),
    })
}
