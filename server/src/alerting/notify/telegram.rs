//! Telegram Bot API: `POST {api_base}/bot{token}/sendMessage`.

use serde_json::json;

use super::Outgoing;

/// The request that sends `text` to `chat_id`. Plain text (no `parse_mode`),
/// so agent names and labels need no escaping.
pub fn send_message(api_base: &str, token: &str, chat_id: &str, text: &str) -> Outgoing {
    // A numeric chat id goes as a number, `@channel` names as a string; the
    // Bot API accepts both.
    let chat_id = chat_id
        .parse::<i64>()
        .map_or_else(|_| json!(chat_id), |n| json!(n));
    let body = json!({
        "chat_id": chat_id,
        "text": text,
        "disable_web_page_preview": true,
    });
    Outgoing {
        url: format!("{api_base}/bot{token}/sendMessage"),
        body: serde_json::to_vec(&body).unwrap_or_default(),
        headers: Vec::new(),
        // The token is part of the URL: keep it out of recorded errors.
        redact: Some(token.to_string()),
        // The API base is the server's own configuration, not a user's.
        caller: super::Caller::Admin,
        method: "POST",
    }
}
