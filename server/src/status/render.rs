//! The HTML and SVG of status pages: plain markup, no script, every text
//! escaped, one same-origin style sheet (light and dark by the reader's
//! preference, one column on a phone).

use super::{PublicItem, PublicPage};

/// `&`, `<`, `>`, `"` and `'` as entities.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A UTC time as `2026-01-01 12:00 UTC`.
fn when(ms: i64) -> String {
    let text = storage::model::time::format_rfc3339_ms(ms);
    let (date, rest) = text.split_once('T').unwrap_or((&text, ""));
    format!("{date} {} UTC", rest.get(..5).unwrap_or(""))
}

fn shell(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"color-scheme\" content=\"light dark\">\
         <title>{}</title><link rel=\"stylesheet\" href=\"/status/_/style.css\"></head>\
         <body><main>{body}</main></body></html>\n",
        esc(title)
    )
}

pub fn not_found() -> axum::response::Html<String> {
    axum::response::Html(shell(
        "Not found",
        "<h1>No such status page</h1><p>Check the address.</p>",
    ))
}

/// The key form of a private page (a GET form: no script, no cookie).
pub fn private_form(slug: &str, wrong: bool) -> axum::response::Html<String> {
    let note = if wrong {
        "<p class=\"warn\">That key is not right.</p>"
    } else {
        ""
    };
    axum::response::Html(shell(
        "Private status page",
        &format!(
            "<h1>Private status page</h1><p>This page needs its key.</p>{note}\
             <form method=\"get\" action=\"/status/{}\"><label>Key \
             <input name=\"key\" type=\"password\" autocomplete=\"off\" required></label> \
             <button type=\"submit\">Open</button></form>",
            esc(slug)
        ),
    ))
}

fn state_word(item: &PublicItem) -> &'static str {
    if item.in_maintenance {
        return "Maintenance";
    }
    match item.state.as_str() {
        "up" => "Operational",
        "down" => "Down",
        _ => "Unknown",
    }
}

fn bars(days: &[Option<f64>]) -> String {
    let mut out =
        String::from("<div class=\"bars\" role=\"img\" aria-label=\"uptime per day, 90 days\">");
    for d in days {
        let (class, title) = match d {
            None => ("none".to_string(), "no data".to_string()),
            Some(p) if *p >= 99.9 => ("ok".to_string(), format!("{p:.2} %")),
            Some(p) if *p >= 95.0 => ("part".to_string(), format!("{p:.2} %")),
            Some(p) => ("bad".to_string(), format!("{p:.2} %")),
        };
        out.push_str(&format!(
            "<span class=\"bar {class}\" title=\"{}\"></span>",
            esc(&title)
        ));
    }
    out.push_str("</div>");
    out
}

/// The whole page.
pub fn page(view: &PublicPage, _key: Option<&str>) -> String {
    let mut body = format!("<header><h1>{}</h1>", esc(&view.title));
    if let Some(d) = &view.description {
        body.push_str(&format!("<p class=\"description\">{}</p>", esc(d)));
    }
    let overall = match view.overall.as_str() {
        "up" => ("ok", "All systems operational"),
        "down" => ("bad", "Some systems are down"),
        "maintenance" => ("maint", "Scheduled maintenance in progress"),
        _ => ("none", "Status unknown"),
    };
    body.push_str(&format!(
        "<p class=\"overall {}\">{}</p></header>",
        overall.0, overall.1
    ));
    for w in &view.maintenance {
        let now = w.start_ms <= view.generated_ms;
        body.push_str(&format!(
            "<section class=\"notice\"><h2>{} maintenance: {}</h2><p>{} to {}. Alerts for these services are paused.</p></section>",
            if now { "Ongoing" } else { "Scheduled" },
            esc(&w.title),
            when(w.start_ms),
            when(w.end_ms)
        ));
    }
    for section in &view.sections {
        body.push_str("<section class=\"group\">");
        if !section.title.is_empty() {
            body.push_str(&format!("<h2>{}</h2>", esc(&section.title)));
        }
        body.push_str("<ul>");
        for item in &section.items {
            let class = if item.in_maintenance {
                "maint"
            } else {
                match item.state.as_str() {
                    "up" => "ok",
                    "down" => "bad",
                    _ => "none",
                }
            };
            body.push_str(&format!(
                "<li><div class=\"row\"><span class=\"name\">{}</span><span class=\"state {class}\">{}</span></div>",
                esc(&item.name),
                state_word(item)
            ));
            if let Some(t) = &item.target {
                body.push_str(&format!("<div class=\"target\">{}</div>", esc(t)));
            }
            let mut facts = Vec::new();
            if let Some(u) = item.uptime_30d {
                facts.push(format!("{u:.2} % uptime (30 days)"));
            }
            if let Some(c) = item.cpu_pct {
                facts.push(format!("CPU {c:.0} %"));
            }
            if let Some(m) = item.memory_pct {
                facts.push(format!("memory {m:.0} %"));
            }
            if !facts.is_empty() {
                body.push_str(&format!(
                    "<div class=\"facts\">{}</div>",
                    esc(&facts.join(" · "))
                ));
            }
            if !item.days.is_empty() {
                body.push_str(&bars(&item.days));
            }
            body.push_str("</li>");
        }
        body.push_str("</ul></section>");
    }
    if !view.incidents.is_empty() {
        body.push_str("<section class=\"incidents\"><h2>Incidents</h2>");
        for incident in &view.incidents {
            let status = match incident.resolved_ms {
                Some(t) => format!("Resolved {}", when(t)),
                None => "Ongoing".to_string(),
            };
            body.push_str(&format!(
                "<article><h3>{}</h3><p class=\"meta\">{} · {}</p><ol>",
                esc(&incident.title),
                when(incident.created_ms),
                esc(&status)
            ));
            for u in incident.updates.iter().rev() {
                body.push_str(&format!(
                    "<li><time>{}</time> {}</li>",
                    when(u.ts_ms),
                    esc(&u.message)
                ));
            }
            body.push_str("</ol></article>");
        }
        body.push_str("</section>");
    }
    body.push_str(&format!(
        "<footer>Updated {} · StatusMonitor</footer>",
        when(view.generated_ms)
    ));
    shell(&view.title, &body)
}

/// A shields-style badge: the item's name and state.
pub fn badge(item: &PublicItem) -> String {
    let (word, color) = match (item.in_maintenance, item.state.as_str()) {
        (true, _) => ("maintenance", "#1f6feb"),
        (_, "up") => ("up", "#2da44e"),
        (_, "down") => ("down", "#cf222e"),
        _ => ("unknown", "#6e7781"),
    };
    let name: String = item.name.chars().take(40).collect();
    let left = 12 + 7 * name.chars().count();
    let right = 12 + 7 * word.len();
    let total = left + right;
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{total}\" height=\"20\" role=\"img\" aria-label=\"{n}: {word}\">\
         <title>{n}: {word}</title>\
         <rect width=\"{left}\" height=\"20\" fill=\"#555\"/><rect x=\"{left}\" width=\"{right}\" height=\"20\" fill=\"{color}\"/>\
         <g fill=\"#fff\" font-family=\"Verdana,DejaVu Sans,sans-serif\" font-size=\"11\">\
         <text x=\"6\" y=\"14\">{n}</text><text x=\"{tx}\" y=\"14\">{word}</text></g></svg>",
        n = esc(&name),
        tx = left + 6,
    )
}

/// The style sheet (`/status/_/style.css`).
pub const STYLE: &str = r#"
:root { color-scheme: light dark; --bg: #f6f8fa; --card: #fff; --fg: #1f2328; --muted: #59636e;
  --ok: #2da44e; --bad: #cf222e; --part: #d4a72c; --none: #d0d7de; --maint: #1f6feb; }
@media (prefers-color-scheme: dark) {
  :root { --bg: #0d1117; --card: #161b22; --fg: #e6edf3; --muted: #9198a1; --none: #30363d; }
}
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--fg);
  font: 16px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; }
main { max-width: 52rem; margin: 0 auto; padding: 1.5rem 1rem 3rem; }
h1 { margin: 0 0 .25rem; font-size: 1.8rem; }
h2 { font-size: 1.1rem; margin: 0 0 .5rem; }
.description, .meta, .facts, .target, footer { color: var(--muted); }
.overall { padding: .75rem 1rem; border-radius: .5rem; color: #fff; font-weight: 600; }
.overall.ok { background: var(--ok); } .overall.bad { background: var(--bad); }
.overall.maint { background: var(--maint); } .overall.none { background: var(--muted); }
section { background: var(--card); border-radius: .5rem; padding: 1rem; margin: 1rem 0; }
ul { list-style: none; margin: 0; padding: 0; }
li { padding: .6rem 0; border-top: 1px solid var(--none); }
li:first-child { border-top: 0; }
.row { display: flex; justify-content: space-between; gap: 1rem; flex-wrap: wrap; }
.name { font-weight: 600; overflow-wrap: anywhere; }
.state.ok { color: var(--ok); } .state.bad { color: var(--bad); }
.state.maint { color: var(--maint); } .state.none { color: var(--muted); }
.target { font-family: ui-monospace, monospace; font-size: .85rem; overflow-wrap: anywhere; }
.bars { display: flex; gap: 2px; height: 1.6rem; margin-top: .4rem; }
.bar { flex: 1; border-radius: 2px; background: var(--none); min-width: 1px; }
.bar.ok { background: var(--ok); } .bar.part { background: var(--part); } .bar.bad { background: var(--bad); }
.notice { border-left: 4px solid var(--maint); }
.incidents ol { padding-left: 1.2rem; } time { color: var(--muted); font-size: .9rem; }
.warn { color: var(--bad); }
input, button { font: inherit; padding: .3rem .6rem; }
footer { font-size: .85rem; text-align: center; margin-top: 2rem; }
@media (max-width: 36rem) { main { padding: 1rem .5rem; } .bars { gap: 1px; height: 1.2rem; } h1 { font-size: 1.4rem; } }
"#;
