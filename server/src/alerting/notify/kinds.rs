//! One message format per channel kind, and the HTTP request each service
//! documents. No template engine: the text is assembled here from the
//! event's fields, each escaped for the markup of the channel it goes to
//! (Telegram MarkdownV2, Discord and Slack mrkdwn, Matrix HTML).
//!
//! | kind | request |
//! | --- | --- |
//! | Telegram | `POST {api}/bot{token}/sendMessage`, `{chat_id, text, parse_mode: "MarkdownV2"}` |
//! | ntfy | `POST {server}/` JSON publish `{topic, title, message, priority, tags, click}`, `Authorization: Bearer` when a token is set |
//! | Discord | `POST {webhook}`, `{content, allowed_mentions: {parse: []}}` (≤ 2000 chars, no pings) |
//! | Slack | `POST {webhook}`, `{text, blocks: [section mrkdwn, context]}` |
//! | Gotify | `POST {server}/message`, `X-Gotify-Key`, `{title, message, priority, extras: markdown}` |
//! | Pushover | `POST {api}/1/messages.json`, `{token, user, title, message, priority, url, url_title}` |
//! | Matrix | `PUT {homeserver}/_matrix/client/v3/rooms/{room}/send/m.room.message/{txn}`, `Authorization: Bearer`, `{msgtype: m.text, body, format, formatted_body}` |

use serde_json::json;
use storage::catalog::ChannelRecord;
use storage::model::{AlertMetric, AlertState};

use super::Outgoing;
use crate::outbound::Caller;

/// What every format says about one event (or a test, or a summary).
#[derive(Debug, Clone)]
pub struct Text {
    /// One line: `nas: CPU is 95.0% (> 90.0%)`.
    pub title: String,
    /// Further lines: the rule, since when.
    pub lines: Vec<String>,
    /// The agent's page (or the dashboard).
    pub url: String,
    /// Firing (an alert), or resolved / a test / a summary.
    pub urgent: bool,
    pub state: Option<AlertState>,
    pub metric: Option<AlertMetric>,
}

impl Text {
    /// The plain text: title, lines, link.
    pub fn plain(&self) -> String {
        let mut out = self.title.clone();
        for l in &self.lines {
            out.push('\n');
            out.push_str(l);
        }
        out.push('\n');
        out.push_str(&self.url);
        out
    }

    fn icon(&self) -> &'static str {
        match self.state {
            Some(AlertState::Firing) => "🔴 ",
            Some(AlertState::Resolved) => "✅ ",
            None => "",
        }
    }
}

/// Telegram MarkdownV2: every reserved character escaped.
pub fn escape_telegram(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if "_*[]()~`>#+-=|{}.!\\".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Discord markdown: formatting characters escaped.
pub fn escape_discord(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if "\\*_~`|>#[]()".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Slack mrkdwn: `&`, `<`, `>` as entities (what Slack asks for).
pub fn escape_slack(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// HTML text (Matrix `formatted_body`).
pub fn escape_html(text: &str) -> String {
    escape_slack(text).replace('"', "&quot;")
}

/// At most `max` characters, cut on a character boundary with `…`.
fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

fn json_body(value: &serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}

fn post(url: String, body: Vec<u8>, caller: Caller) -> Outgoing {
    Outgoing {
        url,
        body,
        headers: Vec::new(),
        redact: None,
        caller,
        method: "POST",
    }
}

/// `POST {api_base}/bot{token}/sendMessage`.
pub fn telegram(api_base: &str, token: &str, chat_id: &str, text: &Text) -> Outgoing {
    let mut body = format!(
        "*{}*",
        escape_telegram(&format!("{}{}", text.icon(), text.title))
    );
    for l in &text.lines {
        body.push('\n');
        body.push_str(&escape_telegram(l));
    }
    body.push('\n');
    body.push_str(&escape_telegram(&text.url));
    let mut out = super::telegram::send_message(api_base, token, chat_id, &cut(&body, 4000));
    if let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(&out.body) {
        v["parse_mode"] = json!("MarkdownV2");
        out.body = json_body(&v);
    }
    out
}

/// ntfy's JSON publish to the server root.
pub fn ntfy(c: &ChannelRecord, text: &Text, caller: Caller) -> Option<Outgoing> {
    let server = c.field("server_url")?.trim_end_matches('/');
    let priority: u8 = if text.urgent {
        c.field("priority")
            .and_then(|p| p.parse().ok())
            .unwrap_or(4)
    } else {
        3
    };
    let mut tags: Vec<String> = c
        .field("tags")
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect();
    tags.insert(
        0,
        match text.state {
            Some(AlertState::Firing) => "rotating_light",
            Some(AlertState::Resolved) => "white_check_mark",
            None => "bell",
        }
        .to_string(),
    );
    let body = json!({
        "topic": c.field("topic")?,
        "title": text.title,
        "message": cut(&text.lines.join("\n"), 3000),
        "priority": priority,
        "tags": tags,
        "click": text.url,
    });
    let mut out = post(format!("{server}/"), json_body(&body), caller);
    if let Some(token) = c.field("token") {
        out.headers
            .push(("Authorization", format!("Bearer {token}")));
    }
    Some(out)
}

pub fn discord(c: &ChannelRecord, text: &Text, caller: Caller) -> Option<Outgoing> {
    let url = c.field("webhook_url")?;
    let mut content = format!("**{}{}**", text.icon(), escape_discord(&text.title));
    for l in &text.lines {
        content.push('\n');
        content.push_str(&escape_discord(l));
    }
    content.push('\n');
    content.push_str(&text.url);
    let body = json!({
        "content": cut(&content, 2000),
        "username": "StatusMonitor",
        // Names are user data: never ping @everyone, roles or users.
        "allowed_mentions": { "parse": [] },
    });
    let mut out = post(url.to_string(), json_body(&body), caller);
    out.redact = Some(url.to_string());
    Some(out)
}

pub fn slack(c: &ChannelRecord, text: &Text, caller: Caller) -> Option<Outgoing> {
    let url = c.field("webhook_url")?;
    let mut section = format!("*{}{}*", text.icon(), escape_slack(&text.title));
    for l in &text.lines {
        section.push('\n');
        section.push_str(&escape_slack(l));
    }
    let body = json!({
        "text": cut(&text.plain(), 3000),
        "blocks": [
            { "type": "section", "text": { "type": "mrkdwn", "text": cut(&section, 3000) } },
            { "type": "context", "elements": [
                { "type": "mrkdwn", "text": format!("<{}|Open in StatusMonitor>", escape_slack(&text.url)) }
            ] },
        ],
    });
    let mut out = post(url.to_string(), json_body(&body), caller);
    out.redact = Some(url.to_string());
    Some(out)
}

pub fn gotify(c: &ChannelRecord, text: &Text, caller: Caller) -> Option<Outgoing> {
    let server = c.field("server_url")?.trim_end_matches('/');
    let token = c.field("app_token")?;
    let priority: u8 = if text.urgent {
        c.field("priority")
            .and_then(|p| p.parse().ok())
            .unwrap_or(8)
    } else {
        4
    };
    let body = json!({
        "title": format!("{}{}", text.icon(), text.title),
        "message": format!("{}\n\n{}", text.lines.join("  \n"), text.url),
        "priority": priority,
        "extras": {
            "client::display": { "contentType": "text/plain" },
            "client::notification": { "click": { "url": text.url } },
        },
    });
    let mut out = post(format!("{server}/message"), json_body(&body), caller);
    out.headers.push(("X-Gotify-Key", token.to_string()));
    Some(out)
}

pub fn pushover(
    api_base: &str,
    c: &ChannelRecord,
    text: &Text,
    caller: Caller,
) -> Option<Outgoing> {
    let priority: i8 = if text.urgent {
        c.field("priority")
            .and_then(|p| p.parse().ok())
            .unwrap_or(1)
    } else {
        0
    };
    let body = json!({
        "token": c.field("app_token")?,
        "user": c.field("user_key")?,
        "title": cut(&format!("{}{}", text.icon(), text.title), 250),
        "message": cut(&text.lines.join("\n"), 1024),
        "priority": priority,
        "url": text.url,
        "url_title": "Open in StatusMonitor",
    });
    Some(post(
        format!("{api_base}/1/messages.json"),
        json_body(&body),
        caller,
    ))
}

/// The room id as one URL path segment.
fn path_segment(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

pub fn matrix(c: &ChannelRecord, text: &Text, txn_id: &str, caller: Caller) -> Option<Outgoing> {
    let server = c.field("homeserver")?.trim_end_matches('/');
    let room = path_segment(c.field("room_id")?);
    let token = c.field("access_token")?;
    let mut html = format!(
        "<strong>{}{}</strong>",
        text.icon(),
        escape_html(&text.title)
    );
    for l in &text.lines {
        html.push_str("<br>");
        html.push_str(&escape_html(l));
    }
    html.push_str(&format!(
        "<br><a href=\"{0}\">{0}</a>",
        escape_html(&text.url)
    ));
    let body = json!({
        "msgtype": "m.text",
        "body": format!("{}{}", text.icon(), text.plain()),
        "format": "org.matrix.custom.html",
        "formatted_body": html,
    });
    let mut out = post(
        format!(
            "{server}/_matrix/client/v3/rooms/{room}/send/m.room.message/{}",
            path_segment(txn_id)
        ),
        json_body(&body),
        caller,
    );
    out.method = "PUT";
    out.headers
        .push(("Authorization", format!("Bearer {token}")));
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markups_are_escaped_per_channel() {
        assert_eq!(escape_telegram("95.0% (> 90)"), "95\\.0% \\(\\> 90\\)");
        assert_eq!(escape_slack("<!channel> & co"), "&lt;!channel&gt; &amp; co");
        assert_eq!(escape_discord("[a](b) *x*"), "\\[a\\]\\(b\\) \\*x\\*");
        assert_eq!(escape_html("<b>\"x\""), "&lt;b&gt;&quot;x&quot;");
        assert_eq!(cut("abcdef", 4), "abc…");
        assert_eq!(path_segment("!room:example.org"), "%21room%3Aexample.org");
    }
}
