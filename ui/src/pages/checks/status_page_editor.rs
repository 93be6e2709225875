//! The parts of the status-page form that edit the page's layout and
//! schedule: its sections (title, the order of their items, moving items
//! between them), each item's label and "CPU and memory" (agents), and the
//! maintenance windows (add, list with the one in progress marked, delete).
//! They edit the draft spec in place; it is sent with "Save page".

use leptos::prelude::*;
use storage::model::{
    MaintenanceWindow, StatusItem, StatusItemKind, StatusPageSpec, StatusSection,
};

use crate::components::common::{Problem, field_error, use_now};
use crate::format;

/// Whether the draft shows `item`.
pub(super) fn has_item(spec: &StatusPageSpec, item: (StatusItemKind, u64)) -> bool {
    spec.sections
        .iter()
        .flat_map(|s| &s.items)
        .any(|i| (i.kind, i.id) == item)
}

/// Ticks or unticks `item`: a new one goes at the end of the first section
/// ("Services" on a page without sections).
pub(super) fn toggle_item(spec: &mut StatusPageSpec, item: (StatusItemKind, u64)) {
    if has_item(spec, item) {
        for s in &mut spec.sections {
            s.items.retain(|i| (i.kind, i.id) != item);
        }
        return;
    }
    if spec.sections.is_empty() {
        spec.sections.push(StatusSection {
            title: "Services".into(),
            items: Vec::new(),
        });
    }
    if let Some(first) = spec.sections.first_mut() {
        first.items.push(StatusItem {
            kind: item.0,
            id: item.1,
            label: None,
            show_target: false,
            show_metrics: false,
        });
    }
}

/// Moves item `i` of section `s` one place up or down: within its section,
/// or from the top of a section to the end of the one before, from the
/// bottom to the start of the one after.
pub(super) fn move_item(spec: &mut StatusPageSpec, s: usize, i: usize, up: bool) {
    let Some(len) = spec.sections.get(s).map(|x| x.items.len()) else {
        return;
    };
    if i >= len {
        return;
    }
    match (up, i) {
        (true, 0) if s > 0 => {
            let item = spec.sections[s].items.remove(0);
            spec.sections[s - 1].items.push(item);
        }
        (true, 0) => {}
        (true, i) => spec.sections[s].items.swap(i, i - 1),
        (false, i) if i + 1 < len => spec.sections[s].items.swap(i, i + 1),
        (false, _) if s + 1 < spec.sections.len() => {
            let item = spec.sections[s].items.remove(i);
            spec.sections[s + 1].items.insert(0, item);
        }
        (false, _) => {}
    }
}

/// A `datetime-local` value (`2026-12-06T22:00`) as ms since the epoch, in
/// the browser's time zone (UTC where there is no browser).
pub(super) fn local_ms(text: &str) -> Option<i64> {
    let text = text.trim();
    let bytes = text.as_bytes();
    // YYYY-MM-DDTHH:MM, optionally :SS.
    if !(text.len() == 16 || text.len() == 19)
        || bytes.get(4) != Some(&b'-')
        || bytes.get(7) != Some(&b'-')
        || bytes.get(10) != Some(&b'T')
        || bytes.get(13) != Some(&b':')
    {
        return None;
    }
    let n = |r: std::ops::Range<usize>| text.get(r).and_then(|t| t.parse::<i64>().ok());
    let (y, mo, d, h, mi) = (n(0..4)?, n(5..7)?, n(8..10)?, n(11..13)?, n(14..16)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 {
        return None;
    }
    #[cfg(feature = "hydrate")]
    {
        let _ = (y, mo, d, h, mi);
        let ms = js_sys::Date::new(&wasm_bindgen::JsValue::from_str(text)).get_time();
        ms.is_finite().then_some(ms as i64)
    }
    #[cfg(not(feature = "hydrate"))]
    {
        // Days from the civil date (Howard Hinnant's algorithm).
        let y = if mo <= 2 { y - 1 } else { y };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let mp = (mo + 9) % 12;
        let doy = (153 * mp + 2) / 5 + d - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = era * 146_097 + doe - 719_468;
        Some(((days * 24 + h) * 60 + mi) * 60_000)
    }
}

/// The sections of the draft: title, items in order with ↑/↓, label, and
/// "CPU and memory" for agents.
#[component]
pub(super) fn SectionsEditor(
    draft: RwSignal<StatusPageSpec>,
    /// The name of an item (its check's or agent's).
    names: Signal<Vec<((StatusItemKind, u64), String)>>,
    problem: Problem,
) -> impl IntoView {
    let name_of = move |key: (StatusItemKind, u64)| {
        names.with(|n| {
            n.iter()
                .find(|(k, _)| *k == key)
                .map(|(_, n)| n.clone())
                .unwrap_or_else(|| format!("#{}", key.1))
        })
    };
    view! {
        <fieldset class="wide sp-items sp-sections" id="sp-sections">
            <legend>"Sections and order"</legend>
            <p class="muted small">"Tick items above; ↑ and ↓ order them and move them between sections. A label replaces the name on the page. Empty sections are not kept."</p>
            {move || {
                let sections = draft.with(|d| d.sections.clone());
                let count = sections.len();
                sections.into_iter().enumerate().map(|(s, section)| {
                    let items = section.items.len();
                    view! {
                        <div class="sp-section" data-section=s.to_string()>
                            <label>"Section title"
                                <input class="sp-section-title" maxlength="100" prop:value=section.title.clone()
                                    placeholder="Untitled"
                                    on:input=move |ev| {
                                        let v = event_target_value(&ev);
                                        draft.update_untracked(|d| if let Some(x) = d.sections.get_mut(s) { x.title = v; });
                                    } />
                            </label>
                            {(items == 0).then(|| view! { <p class="muted small">"Empty: move an item here with ↓ or ↑."</p> })}
                            <ul class="plain-list">
                                {section.items.into_iter().enumerate().map(|(i, item)| {
                                    let name = name_of((item.kind, item.id));
                                    let agent = item.kind == StatusItemKind::Agent;
                                    let first = s == 0 && i == 0;
                                    let last = s + 1 == count && i + 1 == items;
                                    view! {
                                        <li class="sp-entry" data-item=name.clone()>
                                            <span class="sp-entry-name clip" title=name.clone()>{name.clone()}</span>
                                            <input class="sp-label" maxlength="64" aria-label=format!("Label of {name}")
                                                placeholder=name.clone() prop:value=item.label.clone().unwrap_or_default()
                                                on:input=move |ev| {
                                                    let v = event_target_value(&ev);
                                                    draft.update_untracked(|d| if let Some(x) = d.sections.get_mut(s).and_then(|x| x.items.get_mut(i)) {
                                                        x.label = (!v.trim().is_empty()).then(|| v.trim().to_string());
                                                    });
                                                } />
                                            {agent.then(|| view! {
                                                <label class="check muted small"><input type="checkbox" class="sp-metrics"
                                                    prop:checked=item.show_metrics
                                                    on:change=move |ev| {
                                                        let on = event_target_checked(&ev);
                                                        draft.update_untracked(|d| if let Some(x) = d.sections.get_mut(s).and_then(|x| x.items.get_mut(i)) {
                                                            x.show_metrics = on;
                                                        });
                                                    } />"CPU and memory"</label>
                                            })}
                                            <button type="button" class="button secondary small sp-up" disabled=first
                                                aria-label=format!("Move {name} up")
                                                on:click=move |_| draft.update(|d| move_item(d, s, i, true))>"↑"</button>
                                            <button type="button" class="button secondary small sp-down" disabled=last
                                                aria-label=format!("Move {name} down")
                                                on:click=move |_| draft.update(|d| move_item(d, s, i, false))>"↓"</button>
                                        </li>
                                    }
                                }).collect_view()}
                            </ul>
                        </div>
                    }
                }).collect_view()
            }}
            <button type="button" class="button secondary small" id="sp-add-section"
                on:click=move |_| draft.update(|d| d.sections.push(StatusSection { title: String::new(), items: Vec::new() }))>
                "Add section"</button>
            {field_error(problem, "sections", "sp-error")}
        </fieldset>
    }
}

/// The draft's maintenance windows: the list (in progress, to come, ended)
/// with delete, and a form to add one.
#[component]
pub(super) fn MaintenanceEditor(
    draft: RwSignal<StatusPageSpec>,
    problem: Problem,
) -> impl IntoView {
    let now = use_now(30_000);
    let title = RwSignal::new(String::new());
    let start = RwSignal::new(String::new());
    let end = RwSignal::new(String::new());
    let add = move |_| {
        let t = title.get_untracked().trim().to_string();
        let window = match (
            local_ms(&start.get_untracked()),
            local_ms(&end.get_untracked()),
        ) {
            _ if t.is_empty() => Err("A maintenance window needs a title."),
            (None, _) => Err("Choose when the window starts."),
            (_, None) => Err("Choose when the window ends."),
            (Some(s), Some(e)) if e <= s => Err("A window ends after it starts."),
            (Some(s), Some(e)) => Ok(MaintenanceWindow {
                title: t,
                start_ms: s,
                end_ms: e,
            }),
        };
        match window {
            Ok(w) => {
                draft.update(|d| d.maintenance.push(w));
                title.set(String::new());
                start.set(String::new());
                end.set(String::new());
                problem.set(None);
            }
            Err(why) => problem.set(Some((Some("maintenance"), why.to_string()))),
        }
    };
    view! {
        <fieldset class="wide sp-items sp-maintenance" id="sp-maintenance">
            <legend>"Scheduled maintenance"</legend>
            <p class="muted small">"The page says so during a window, and the alerts of its items stay quiet. Saved with the page."</p>
            <ul class="plain-list" id="sp-windows">
                {move || {
                    let list = draft.with(|d| d.maintenance.clone());
                    let t = now.get();
                    list.into_iter().enumerate().map(|(i, w)| {
                        let (class, when) = if w.start_ms <= t && t < w.end_ms {
                            ("badge badge-pending", "in progress")
                        } else if w.end_ms <= t {
                            ("badge", "ended")
                        } else {
                            ("badge", "to come")
                        };
                        view! {
                            <li class="sp-window" data-window=w.title.clone()>
                                <strong>{w.title.clone()}</strong>
                                <span class="muted small">{format!(" {} – {} ", format::datetime(w.start_ms), format::datetime(w.end_ms))}</span>
                                <span class=class>{when}</span>
                                <button type="button" class="button secondary small sp-window-delete"
                                    aria-label=format!("Delete the window {}", w.title)
                                    on:click=move |_| draft.update(|d| { if i < d.maintenance.len() { d.maintenance.remove(i); } })>"Delete"</button>
                            </li>
                        }
                    }).collect_view()
                }}
            </ul>
            <div class="form-grid">
                <label>"Title"<input id="sp-window-title" maxlength="100" bind:value=title placeholder="Disk swap" /></label>
                <label>"Starts"<input id="sp-window-start" type="datetime-local" bind:value=start /></label>
                <label>"Ends"<input id="sp-window-end" type="datetime-local" bind:value=end /></label>
                <div class="form-actions"><button type="button" class="button secondary small" id="sp-window-add" on:click=add>"Add window"</button></div>
            </div>
            {field_error(problem, "maintenance", "sp-error")}
        </fieldset>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use StatusItemKind::{Agent, Check};

    fn spec(sections: &[(&str, &[(StatusItemKind, u64)])]) -> StatusPageSpec {
        let mut spec = StatusPageSpec {
            slug: "home".into(),
            title: "Home".into(),
            description: None,
            sections: Vec::new(),
            maintenance: Vec::new(),
            private: false,
        };
        for (title, items) in sections {
            spec.sections.push(StatusSection {
                title: title.to_string(),
                items: Vec::new(),
            });
            for &item in *items {
                spec.sections.last_mut().unwrap().items.push(StatusItem {
                    kind: item.0,
                    id: item.1,
                    label: None,
                    show_target: false,
                    show_metrics: false,
                });
            }
        }
        spec
    }

    fn layout(spec: &StatusPageSpec) -> Vec<Vec<u64>> {
        spec.sections
            .iter()
            .map(|s| s.items.iter().map(|i| i.id).collect())
            .collect()
    }

    #[test]
    fn items_move_within_and_across_sections_and_stop_at_the_ends() {
        let mut s = spec(&[("Web", &[(Check, 1), (Check, 2)]), ("Boxes", &[])]);
        move_item(&mut s, 0, 1, true);
        assert_eq!(layout(&s), [vec![2, 1], vec![]]);
        move_item(&mut s, 0, 1, false);
        assert_eq!(layout(&s), [vec![2], vec![1]], "into the empty section");
        move_item(&mut s, 1, 0, true);
        assert_eq!(
            layout(&s),
            [vec![2, 1], vec![]],
            "back to the end of the one before"
        );
        move_item(&mut s, 0, 0, true);
        move_item(&mut s, 1, 0, false);
        move_item(&mut s, 5, 0, false);
        assert_eq!(layout(&s), [vec![2, 1], vec![]], "nothing past the ends");
    }

    #[test]
    fn ticking_adds_to_the_first_section_and_unticking_removes() {
        let mut s = spec(&[]);
        toggle_item(&mut s, (Agent, 7));
        assert_eq!(s.sections[0].title, "Services");
        toggle_item(&mut s, (Check, 3));
        assert_eq!(layout(&s), [vec![7, 3]]);
        assert!(has_item(&s, (Check, 3)) && !has_item(&s, (Agent, 3)));
        toggle_item(&mut s, (Agent, 7));
        assert_eq!(layout(&s), [vec![3]]);
    }

    #[test]
    fn datetime_local_values_read_as_utc_off_the_browser() {
        assert_eq!(local_ms("1970-01-01T00:01"), Some(60_000));
        assert_eq!(local_ms("2026-12-06T22:00"), Some(1_796_594_400_000));
        assert_eq!(local_ms("2026-12-06T22:00:00"), Some(1_796_594_400_000));
        for bad in [
            "",
            "2026-13-06T22:00",
            "2026-12-06 22:00",
            "tomorrow",
            "2026-12-06T24:00",
        ] {
            assert_eq!(local_ms(bad), None, "{bad}");
        }
    }
}
