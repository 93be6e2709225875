//! The check form: its fields as typed, how they become a [`CheckSpec`]
//! (numbers checked here, by field, before anything is sent), and how the
//! API's refusals map back onto the fields.

use leptos::prelude::*;
use storage::model::{
    CheckHeader, CheckInfo, CheckKind, CheckRequest, CheckSpec, DEFAULT_CHECK_INTERVAL_S,
    DEFAULT_CHECK_TIMEOUT_MS, HttpCheckOptions, MAX_CHECK_INTERVAL_S, MAX_CHECK_RETRIES,
    MAX_CHECK_TIMEOUT_MS, MIN_CHECK_INTERVAL_S, MIN_CHECK_TIMEOUT_MS,
};

use crate::api::ApiError;
use crate::components::common::{Problem, api_problem, field_error};

/// The methods an HTTP check may use.
pub(super) const METHODS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"];

/// The form's fields, as typed.
#[derive(Debug, Clone, Copy)]
pub(super) struct CheckForm {
    /// `Some(id)` while editing that check, `None` for a new one.
    pub(super) editing: RwSignal<Option<u64>>,
    pub(super) open: RwSignal<bool>,
    pub(super) name: RwSignal<String>,
    /// `http`, `tcp`, `dns` or `ping`.
    pub(super) kind: RwSignal<String>,
    pub(super) target: RwSignal<String>,
    /// Seconds, as typed.
    pub(super) interval: RwSignal<String>,
    /// Milliseconds, as typed.
    pub(super) timeout: RwSignal<String>,
    pub(super) retries: RwSignal<String>,
    pub(super) enabled: RwSignal<bool>,
    pub(super) method: RwSignal<String>,
    pub(super) status_min: RwSignal<String>,
    pub(super) status_max: RwSignal<String>,
    pub(super) keyword: RwSignal<String>,
    pub(super) keyword_absent: RwSignal<bool>,
    pub(super) follow_redirects: RwSignal<bool>,
    pub(super) ignore_tls: RwSignal<bool>,
    /// One `Name: value` per line; a stored header shows as `Name:` (its
    /// value is never sent back) and keeps its value when left so.
    pub(super) headers: RwSignal<String>,
    pub(super) dns_expected: RwSignal<String>,
    /// Where it runs: empty for the server, else an agent id.
    pub(super) runner: RwSignal<String>,
    pub(super) problem: Problem,
}

/// The form field an API refusal names (`interval_s: …`, `http.keyword: …`).
pub(super) fn form_field(api_field: &str) -> Option<&'static str> {
    let api_field = api_field.trim_end_matches(':');
    Some(match api_field {
        "name" => "name",
        "kind" => "kind",
        "target" => "target",
        "interval_s" => "interval",
        "timeout_ms" => "timeout",
        "retries" => "retries",
        "dns_expected" => "dns_expected",
        "runner" => "runner",
        "http.method" => "method",
        "http.status_min" | "http.status_max" => "status",
        "http.keyword" | "http.keyword_absent" => "keyword",
        f if f.starts_with("http.headers") => "headers",
        _ => return None,
    })
}

/// An API refusal as the form's problem: under the field it names (dotted
/// names like `http.status_min` too), else about the whole form.
pub(super) fn check_problem(e: &ApiError) -> (Option<&'static str>, String) {
    if matches!(e.status, 400 | 422)
        && let Some((field, rest)) = e.message.split_once(": ")
        && let Some(f) = form_field(field)
    {
        let mut text = rest.trim().to_string();
        if let Some(first) = text.get_mut(..1) {
            first.make_ascii_uppercase();
        }
        if !text.ends_with('.') {
            text.push('.');
        }
        return (Some(f), text);
    }
    api_problem(e, form_field)
}

/// The error of `field`, right under it.
pub(super) fn field_problem(form: CheckForm, field: &'static str) -> impl IntoView {
    field_error(form.problem, field, "check-error")
}

/// A whole number in `min..=max`, or the sentence saying what is wanted.
fn number(text: &str, min: u32, max: u32, what: &str) -> Result<u32, String> {
    text.trim()
        .parse::<u32>()
        .ok()
        .filter(|n| (min..=max).contains(n))
        .ok_or_else(|| format!("A whole number of {what}, {min} to {max}."))
}

impl CheckForm {
    pub(super) fn new() -> Self {
        let s = |v: &str| RwSignal::new(v.to_string());
        CheckForm {
            editing: RwSignal::new(None),
            open: RwSignal::new(false),
            name: s(""),
            kind: s("http"),
            target: s(""),
            interval: s(""),
            timeout: s(""),
            retries: s(""),
            enabled: RwSignal::new(true),
            method: s("GET"),
            status_min: s(""),
            status_max: s(""),
            keyword: s(""),
            keyword_absent: RwSignal::new(false),
            follow_redirects: RwSignal::new(true),
            ignore_tls: RwSignal::new(false),
            headers: s(""),
            dns_expected: s(""),
            runner: s(""),
            problem: RwSignal::new(None),
        }
    }

    pub(super) fn kind(&self) -> CheckKind {
        match self.kind.get().as_str() {
            "tcp" => CheckKind::Tcp,
            "dns" => CheckKind::Dns,
            "ping" => CheckKind::Ping,
            _ => CheckKind::Http,
        }
    }

    /// Fills the form with `check` (editing it) or the defaults (a new one).
    pub(super) fn fill(&self, check: Option<&CheckInfo>) {
        let spec = check.map(|c| &c.spec);
        let http = spec.and_then(|s| s.http.clone()).unwrap_or_default();
        self.editing.set(check.map(|c| c.id));
        self.name
            .set(spec.map(|s| s.name.clone()).unwrap_or_default());
        self.kind.set(
            match spec.map_or(CheckKind::Http, |s| s.kind) {
                CheckKind::Http => "http",
                CheckKind::Tcp => "tcp",
                CheckKind::Dns => "dns",
                CheckKind::Ping => "ping",
            }
            .into(),
        );
        self.target
            .set(spec.map(|s| s.target.clone()).unwrap_or_default());
        self.interval.set(
            spec.map_or(DEFAULT_CHECK_INTERVAL_S, |s| s.interval_s)
                .to_string(),
        );
        self.timeout.set(
            spec.map_or(DEFAULT_CHECK_TIMEOUT_MS, |s| s.timeout_ms)
                .to_string(),
        );
        self.retries.set(spec.map_or(0, |s| s.retries).to_string());
        self.enabled.set(spec.is_none_or(|s| s.enabled));
        self.method.set(http.method.clone());
        self.status_min.set(http.status_min.to_string());
        self.status_max.set(http.status_max.to_string());
        self.keyword.set(http.keyword.clone().unwrap_or_default());
        self.keyword_absent.set(http.keyword_absent);
        self.follow_redirects.set(http.follow_redirects);
        self.ignore_tls.set(http.ignore_tls_errors);
        self.headers.set(
            http.headers
                .iter()
                .map(|h| format!("{}:", h.name))
                .collect::<Vec<_>>()
                .join("\n"),
        );
        self.dns_expected.set(
            spec.and_then(|s| s.dns_expected.clone())
                .unwrap_or_default(),
        );
        self.runner.set(
            check
                .and_then(|c| c.runner)
                .map(|a| a.to_string())
                .unwrap_or_default(),
        );
        self.problem.set(None);
        self.open.set(true);
    }

    /// The request the form describes, or the first field that is wrong.
    pub(super) fn request(&self) -> Result<CheckRequest, (Option<&'static str>, String)> {
        let name = self.name.get_untracked().trim().to_string();
        if name.is_empty() {
            return Err((Some("name"), "A check needs a name.".into()));
        }
        let kind = self.kind();
        let target = self.target.get_untracked().trim().to_string();
        if target.is_empty() {
            return Err((
                Some("target"),
                match kind {
                    CheckKind::Http => "The URL to ask, e.g. https://nas.lan/.",
                    CheckKind::Tcp => "The host and port to connect to, e.g. nas.lan:22.",
                    _ => "The host to check, e.g. nas.lan.",
                }
                .into(),
            ));
        }
        let field = |f: &'static str| move |e: String| (Some(f), e);
        let interval = number(
            &self.interval.get_untracked(),
            MIN_CHECK_INTERVAL_S,
            MAX_CHECK_INTERVAL_S,
            "seconds",
        )
        .map_err(field("interval"))?;
        let timeout = number(
            &self.timeout.get_untracked(),
            MIN_CHECK_TIMEOUT_MS,
            MAX_CHECK_TIMEOUT_MS,
            "milliseconds",
        )
        .map_err(field("timeout"))?;
        if u64::from(timeout) > u64::from(interval) * 1000 {
            return Err((
                Some("timeout"),
                "The timeout must not be longer than the interval.".into(),
            ));
        }
        let retries = number(&self.retries.get_untracked(), 0, MAX_CHECK_RETRIES, "runs")
            .map_err(field("retries"))?;
        let http = if kind == CheckKind::Http {
            let status_min = number(&self.status_min.get_untracked(), 100, 599, "a status")
                .map_err(field("status"))?;
            let status_max = number(&self.status_max.get_untracked(), 100, 599, "a status")
                .map_err(field("status"))?;
            let mut headers = Vec::new();
            for line in self.headers.get_untracked().lines() {
                let line = line.trim();
                if line.is_empty() {
                    continue;
                }
                let Some((name, value)) = line.split_once(':') else {
                    return Err((Some("headers"), "One “Name: value” per line.".into()));
                };
                let value = value.trim();
                headers.push(CheckHeader {
                    name: name.trim().to_string(),
                    // Empty: keep the stored value (never shown).
                    value: (!value.is_empty()).then(|| value.to_string()),
                });
            }
            let keyword = self.keyword.get_untracked();
            Some(HttpCheckOptions {
                method: self.method.get_untracked(),
                status_min: u16::try_from(status_min).unwrap_or(200),
                status_max: u16::try_from(status_max).unwrap_or(399),
                keyword: (!keyword.is_empty()).then_some(keyword),
                keyword_absent: self.keyword_absent.get_untracked(),
                follow_redirects: self.follow_redirects.get_untracked(),
                headers,
                ignore_tls_errors: self.ignore_tls.get_untracked(),
            })
        } else {
            None
        };
        let expected = self.dns_expected.get_untracked().trim().to_string();
        let spec = CheckSpec {
            name,
            kind,
            target,
            interval_s: interval,
            timeout_ms: timeout,
            retries,
            enabled: self.enabled.get_untracked(),
            http,
            dns_expected: (kind == CheckKind::Dns && !expected.is_empty()).then_some(expected),
        };
        Ok(CheckRequest {
            spec,
            runner: self.runner.get_untracked().parse().ok(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotted_api_fields_land_on_the_form_fields() {
        assert_eq!(form_field("http.status_max"), Some("status"));
        assert_eq!(form_field("http.headers[2].name"), Some("headers"));
        assert_eq!(form_field("interval_s:"), Some("interval"));
        assert_eq!(form_field("owner"), None);
        let e = ApiError {
            status: 422,
            message: "http.status_min: statuses are 100 to 599".into(),
        };
        assert_eq!(
            check_problem(&e),
            (Some("status"), "Statuses are 100 to 599.".into())
        );
    }

    #[test]
    fn numbers_out_of_range_name_their_field() {
        let owner = Owner::new();
        owner.with(|| {
            let form = CheckForm::new();
            form.fill(None);
            form.name.set("web".into());
            form.target.set("https://nas.lan/".into());
            form.interval.set("5".into());
            assert_eq!(form.request().unwrap_err().0, Some("interval"));
            form.interval.set("60".into());
            form.timeout.set("61000".into());
            assert_eq!(form.request().unwrap_err().0, Some("timeout"));
            form.timeout.set("5000".into());
            form.retries.set("11".into());
            assert_eq!(form.request().unwrap_err().0, Some("retries"));
            form.retries.set("2".into());
            let request = form.request().expect("a valid form");
            assert_eq!(request.runner, None, "the server by default");
            form.runner.set("7".into());
            assert_eq!(form.request().expect("a valid form").runner, Some(7));
            let spec = request.spec;
            assert_eq!(
                (spec.interval_s, spec.timeout_ms, spec.retries),
                (60, 5000, 2)
            );
            assert_eq!(spec.http.expect("http options").status_max, 399);
        });
    }
}
