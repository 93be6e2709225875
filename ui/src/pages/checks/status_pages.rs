//! Status pages on the Checks page: the list with their public links, a
//! form that creates or edits one (address, title, description, which
//! checks and agents it shows with "show target" per check, its sections,
//! labels and maintenance windows ([`super::status_page_editor`]), private
//! with its secret link shown once or replaced), delete with confirmation,
//! and incidents (open one, post an update, resolve).

use leptos::either::{Either, EitherOf3};
use leptos::ev::SubmitEvent;
use leptos::prelude::*;
use storage::model::{AgentInfo, IncidentRequest, StatusItemKind, StatusPageInfo, StatusPageSpec};

use super::status_page_editor::{MaintenanceEditor, SectionsEditor, has_item, toggle_item};

use crate::api::{self, ApiError};
use crate::components::common::{ErrorNote, Problem, api_problem, field_error};
use crate::format;

/// One operation on a page (one action for all: one instantiation).
#[derive(Debug, Clone)]
enum PageOp {
    Save(Option<u64>, Box<StatusPageSpec>),
    Delete(u64),
    NewKey(u64),
    Incident(u64, Option<u64>, IncidentRequest),
}

/// The form field an API refusal names.
fn form_field(api_field: &str) -> Option<&'static str> {
    let f = api_field.trim_end_matches(':');
    Some(match f {
        "slug" => "slug",
        "title" => "title",
        "description" => "description",
        "private" => "private",
        f if f.starts_with("maintenance") => "maintenance",
        f if f.starts_with("sections") && (f.ends_with(".id") || f == "sections") => "items",
        f if f.starts_with("sections") => "sections",
        _ => return None,
    })
}

/// A page with nothing on it yet.
fn blank() -> StatusPageSpec {
    StatusPageSpec {
        slug: String::new(),
        title: String::new(),
        description: None,
        sections: Vec::new(),
        maintenance: Vec::new(),
        private: false,
    }
}

/// The secret link of a private page, to show once.
fn secret_text(info: &StatusPageInfo) -> Option<String> {
    info.key.as_ref().map(|key| {
        format!(
            "Secret link of /status/{slug} (shown only now): {}/status/{slug}?key={key} — or type the key {key} in the page's form, as its password.",
            crate::pages::users::web_origin(),
            slug = info.spec.slug,
        )
    })
}

#[component]
pub fn StatusPages(
    /// The user's checks: id and name.
    checks: Memo<Vec<(u64, String)>>,
    ready: ReadSignal<bool>,
) -> impl IntoView {
    let pages = LocalResource::new(api::status_pages);
    let agents = LocalResource::new(api::agents);
    let agent_list = Signal::derive(move || agents.get().and_then(Result::ok).unwrap_or_default());
    let editing = RwSignal::new(None::<Option<u64>>);
    let slug = RwSignal::new(String::new());
    let title = RwSignal::new(String::new());
    let description = RwSignal::new(String::new());
    // Items, sections, labels, maintenance and "private", as edited.
    let draft = RwSignal::new(blank());
    let problem: Problem = RwSignal::new(None);
    // A private page's secret link, shown once.
    let secret = RwSignal::new(None::<String>);
    let confirm = RwSignal::new(None::<u64>);
    let failed = RwSignal::new(None::<ApiError>);
    let op = Action::new_local(|op: &PageOp| {
        let op = op.clone();
        async move {
            match op {
                PageOp::Save(None, spec) => api::create_status_page(&spec).await.map(Some),
                PageOp::Save(Some(id), spec) => api::update_status_page(id, &spec).await.map(Some),
                PageOp::Delete(id) => api::delete_status_page(id).await.map(|_| None),
                PageOp::NewKey(id) => api::new_status_page_key(id).await.map(Some),
                PageOp::Incident(id, incident, req) => {
                    api::post_incident(id, incident, &req).await.map(|_| None)
                }
            }
        }
    });
    Effect::new(move |_| match op.value().get() {
        Some(Ok(info)) => {
            if let Some(text) = info.as_ref().and_then(secret_text) {
                secret.set(Some(text));
            }
            editing.set(None);
            confirm.set(None);
            pages.refetch();
        }
        Some(Err(e)) if editing.get_untracked().is_some() => {
            problem.set(Some(api_problem(&e, form_field)));
        }
        Some(Err(e)) => failed.set(Some(e)),
        None => {}
    });
    let open = move |page: Option<&StatusPageInfo>| {
        let spec = page.map(|p| p.spec.clone());
        slug.set(spec.as_ref().map(|s| s.slug.clone()).unwrap_or_default());
        title.set(spec.as_ref().map(|s| s.title.clone()).unwrap_or_default());
        description.set(
            spec.as_ref()
                .and_then(|s| s.description.clone())
                .unwrap_or_default(),
        );
        draft.set(spec.unwrap_or_else(blank));
        problem.set(None);
        secret.set(None);
        editing.set(Some(page.map(|p| p.id)));
    };
    let on_submit = move |ev: SubmitEvent| {
        ev.prevent_default();
        let mut spec = draft.get_untracked();
        spec.sections.retain(|s| !s.items.is_empty());
        spec.slug = slug.get_untracked().trim().to_string();
        spec.title = title.get_untracked().trim().to_string();
        let d = description.get_untracked().trim().to_string();
        spec.description = (!d.is_empty()).then_some(d);
        if spec.slug.is_empty() {
            problem.set(Some((
                Some("slug"),
                "The page's address, e.g. home-lab.".into(),
            )));
            return;
        }
        if spec.title.is_empty() {
            problem.set(Some((Some("title"), "A page needs a title.".into())));
            return;
        }
        problem.set(None);
        op.dispatch(PageOp::Save(
            editing.get_untracked().flatten(),
            Box::new(spec),
        ));
    };
    let ticked = move |item: (StatusItemKind, u64)| draft.with(|d| has_item(d, item));
    let toggle = move |item: (StatusItemKind, u64)| draft.update(|d| toggle_item(d, item));
    let target_shown = move |check: u64| {
        draft.with(|d| {
            d.sections
                .iter()
                .flat_map(|s| &s.items)
                .any(|i| i.kind == StatusItemKind::Check && i.id == check && i.show_target)
        })
    };
    let show_target = move |check: u64, on: bool| {
        draft.update(|d| {
            for i in d.sections.iter_mut().flat_map(|s| s.items.iter_mut()) {
                if i.kind == StatusItemKind::Check && i.id == check {
                    i.show_target = on;
                }
            }
        })
    };
    let names = Signal::derive(move || {
        let mut n: Vec<((StatusItemKind, u64), String)> = checks
            .get()
            .into_iter()
            .map(|(id, name)| ((StatusItemKind::Check, id), name))
            .collect();
        n.extend(
            agent_list
                .get()
                .into_iter()
                .map(|a| ((StatusItemKind::Agent, a.id), format!("{} (agent)", a.name))),
        );
        n
    });

    view! {
        <section class="card" aria-labelledby="status-pages-title" id="status-pages">
            <div class="card-head">
                <h2 class="card-title" id="status-pages-title">"Status pages"</h2>
                <button type="button" class="button small" id="new-status-page" disabled=move || !ready.get()
                    on:click=move |_| open(None)>"New status page"</button>
            </div>
            <p class="muted small">"A public page at /status/… with the checks and agents you tick, their uptime and your incidents. It shows no address, host name or URL unless you tick “show target”."</p>
            {move || secret.get().map(|t| view! { <p class="card secret" id="sp-secret" role="status">{t}</p> })}
            {move || failed.get().map(|e| view! {
                <ErrorNote what="Changing the status page" error=e retry=Callback::new(move |_| failed.set(None)) />
            })}
            <form class="rule-form" id="status-page-form" on:submit=on_submit novalidate hidden=move || editing.get().is_none()>
                <div class="form-grid">
                    <label>"Address: /status/…"
                        <input id="sp-slug" bind:value=slug placeholder="home-lab" maxlength="48" />
                        {field_error(problem, "slug", "sp-error")}
                    </label>
                    <label>"Title"
                        <input id="sp-title" bind:value=title placeholder="Home lab" maxlength="100" />
                        {field_error(problem, "title", "sp-error")}
                    </label>
                    <label class="wide">"Description (optional)"
                        <input id="sp-description" bind:value=description maxlength="2000" />
                        {field_error(problem, "description", "sp-error")}
                    </label>
                    <fieldset class="wide sp-items">
                        <legend>"Shown on the page"</legend>
                        {move || checks.get().into_iter().map(|(check, name)| {
                            let item = (StatusItemKind::Check, check);
                            view! {
                                <div class="sp-item" data-item=name.clone()>
                                    <label class="check"><input type="checkbox" class="sp-tick"
                                        prop:checked=move || ticked(item)
                                        on:change=move |_| toggle(item) />{name.clone()}</label>
                                    <label class="check muted small"><input type="checkbox" class="sp-show-target"
                                        prop:checked=move || target_shown(check)
                                        disabled=move || !ticked(item)
                                        on:change=move |ev| show_target(check, event_target_checked(&ev)) />"show target"</label>
                                </div>
                            }
                        }).collect_view()}
                        {move || agent_list.get().into_iter().map(|a: AgentInfo| {
                            let item = (StatusItemKind::Agent, a.id);
                            view! {
                                <div class="sp-item" data-item=a.name.clone()>
                                    <label class="check"><input type="checkbox" class="sp-tick"
                                        prop:checked=move || ticked(item)
                                        on:change=move |_| toggle(item) />{format!("{} (agent)", a.name)}</label>
                                </div>
                            }
                        }).collect_view()}
                        {field_error(problem, "items", "sp-error")}
                    </fieldset>
                    <SectionsEditor draft=draft names=names problem=problem />
                    <MaintenanceEditor draft=draft problem=problem />
                    <label class="check wide">
                        <input type="checkbox" id="sp-private" prop:checked=move || draft.with(|d| d.private)
                            on:change=move |ev| { let on = event_target_checked(&ev); draft.update(|d| d.private = on); } />
                        "Private: only with its secret link, or its key typed as a password (the link is shown once, when you save)"
                    </label>
                    {field_error(problem, "private", "sp-error")}
                </div>
                <div class="form-error" aria-live="polite">
                    {move || problem.get().and_then(|(field, p)| field.is_none().then(|| view! { <p class="error" role="alert" id="sp-error">{p}</p> }))}
                </div>
                <div class="form-actions">
                    <button class="button" type="submit" id="save-status-page" disabled=move || op.pending().get()>"Save page"</button>
                    <button class="button secondary" type="button" on:click=move |_| editing.set(None)>"Cancel"</button>
                </div>
            </form>
            <div id="status-page-list">
                {move || match pages.get() {
                    None => EitherOf3::A(view! { <div class="skeleton-row"></div> }),
                    Some(Err(e)) => EitherOf3::B(view! { <ErrorNote what="Loading your status pages" error=e /> }),
                    Some(Ok(list)) => EitherOf3::C(if list.is_empty() {
                        Either::Left(view! { <p class="empty">"No status pages yet."</p> })
                    } else {
                        Either::Right(list.into_iter().map(|p| page_row(p, open, confirm, op)).collect_view())
                    }),
                }}
            </div>
        </section>
    }
}

fn page_row<F: Fn(Option<&StatusPageInfo>) + Copy + Send + Sync + 'static>(
    p: StatusPageInfo,
    open: F,
    confirm: RwSignal<Option<u64>>,
    op: Action<PageOp, Result<Option<StatusPageInfo>, ApiError>>,
) -> impl IntoView + use<F> {
    let id = p.id;
    let private = p.spec.private;
    let link = format!("/status/{}", p.spec.slug);
    let items: usize = p.spec.sections.iter().map(|s| s.items.len()).sum();
    let sections = p.spec.sections.len();
    let now = format::now_ms();
    let windows = p.spec.maintenance.iter().filter(|w| w.end_ms > now).count();
    let in_maintenance = p
        .spec
        .maintenance
        .iter()
        .any(|w| w.start_ms <= now && now < w.end_ms);
    let incident_title = RwSignal::new(String::new());
    let incident_text = RwSignal::new(String::new());
    let open_incidents: Vec<(u64, String)> = p
        .incidents
        .iter()
        .filter(|i| i.resolved_ms.is_none())
        .map(|i| (i.id, i.title.clone()))
        .collect();
    let edit = p.clone();
    view! {
        <article class="sp-row" data-page=p.spec.slug.clone()>
            <div class="card-head">
                <div>
                    <h3 class="section-title"><a href=link.clone() class="sp-link">{p.spec.title.clone()}</a></h3>
                    <p class="muted small">{link.clone()} " · " {format!("{items} item{} in {sections} section{}", if items == 1 { "" } else { "s" }, if sections == 1 { "" } else { "s" })}
                        {(windows > 0).then(|| format!(" · {windows} maintenance window{}", if windows == 1 { "" } else { "s" }))}
                        {in_maintenance.then(|| view! { " " <span class="badge badge-pending sp-in-maintenance">"maintenance now"</span> })}
                        {private.then_some(" · private")}</p>
                </div>
                <div class="row-actions">
                    {move || if confirm.get() == Some(id) {
                        Either::Left(view! {
                            <span class="confirm">"Delete this page? "
                                <button type="button" class="button danger small" on:click=move |_| { op.dispatch(PageOp::Delete(id)); }>"Delete"</button>
                                <button type="button" class="button secondary small" on:click=move |_| confirm.set(None)>"Keep"</button>
                            </span>
                        })
                    } else {
                        let edit = edit.clone();
                        Either::Right(view! {
                            <button type="button" class="button secondary small sp-edit" on:click=move |_| open(Some(&edit))>"Edit"</button>
                            {private.then(|| view! {
                                <button type="button" class="button secondary small sp-new-key"
                                    on:click=move |_| { op.dispatch(PageOp::NewKey(id)); }>"New secret link"</button>
                            })}
                            <button type="button" class="button secondary small" on:click=move |_| confirm.set(Some(id))>"Delete"</button>
                        })
                    }}
                </div>
            </div>
            <ul class="sp-incidents">
                {p.incidents.iter().map(|i| view! {
                    <li>
                        <strong>{i.title.clone()}</strong>
                        <span class="muted small">{match i.resolved_ms {
                            Some(t) => format!(" · resolved {}", format::datetime(t)),
                            None => " · ongoing".to_string(),
                        }}</span>
                    </li>
                }).collect_view()}
            </ul>
            <form class="inline-form sp-incident-form" on:submit=move |ev: SubmitEvent| {
                ev.prevent_default();
                let message = incident_text.get_untracked().trim().to_string();
                if message.is_empty() { return; }
                let title = incident_title.get_untracked();
                // An open incident's title: an update (resolving it when ticked); else a new one.
                let req = IncidentRequest { title: Some(title.clone()), message, resolved: false };
                op.dispatch(PageOp::Incident(id, None, req));
                incident_title.set(String::new());
                incident_text.set(String::new());
            }>
                <input class="sp-incident-title" aria-label="Incident title" placeholder="New incident: title" bind:value=incident_title required />
                <input class="sp-incident-message" aria-label="What is happening" placeholder="What is happening" bind:value=incident_text required />
                <button class="button secondary small" type="submit">"Open incident"</button>
            </form>
            {open_incidents.into_iter().map(|(incident, title)| {
                let text = RwSignal::new(String::new());
                let send = move |resolved: bool| {
                    let message = text.get_untracked().trim().to_string();
                    let message = if message.is_empty() && resolved { "Resolved.".to_string() } else { message };
                    if message.is_empty() { return; }
                    op.dispatch(PageOp::Incident(id, Some(incident), IncidentRequest { title: None, message, resolved }));
                };
                view! {
                    <div class="inline-form sp-update" data-incident=title.clone()>
                        <input aria-label=format!("Update on {title}") placeholder="An update" bind:value=text />
                        <button class="button secondary small" type="button" on:click=move |_| send(false)>"Post update"</button>
                        <button class="button secondary small sp-resolve" type="button" on:click=move |_| send(true)>"Resolve"</button>
                    </div>
                }
            }).collect_view()}
        </article>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_land_on_their_part_of_the_form() {
        assert_eq!(form_field("sections[0].items[2].id:"), Some("items"));
        assert_eq!(form_field("sections"), Some("items"));
        assert_eq!(form_field("sections[1].title"), Some("sections"));
        assert_eq!(form_field("sections[0].items[0].label"), Some("sections"));
        assert_eq!(form_field("maintenance[0].end_ms"), Some("maintenance"));
        assert_eq!(form_field("private"), Some("private"));
        assert_eq!(form_field("slug"), Some("slug"));
        assert_eq!(form_field("status_pages"), None);
    }
}
