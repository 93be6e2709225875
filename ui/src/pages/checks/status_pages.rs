//! Status pages on the Checks page: the list with their public links, a
//! form that creates or edits one (address, title, description, and which
//! checks and agents it shows, with "show target" per check), delete with
//! confirmation, and incidents (open one, post an update, resolve).
//! Sections, labels, maintenance windows and private pages are kept as
//! saved and managed through the API (docs/checks.md).

use leptos::either::{Either, EitherOf3};
use leptos::ev::SubmitEvent;
use leptos::prelude::*;
use storage::model::{
    AgentInfo, IncidentRequest, StatusItem, StatusItemKind, StatusPageInfo, StatusPageSpec,
    StatusSection,
};

use crate::api::{self, ApiError};
use crate::components::common::{ErrorNote, Problem, api_problem, field_error};
use crate::format;

/// One operation on a page (one action for all: one instantiation).
#[derive(Debug, Clone)]
enum PageOp {
    Save(Option<u64>, Box<StatusPageSpec>),
    Delete(u64),
    Incident(u64, Option<u64>, IncidentRequest),
}

/// The form field an API refusal names.
fn form_field(api_field: &str) -> Option<&'static str> {
    let f = api_field.trim_end_matches(':');
    Some(match f {
        "slug" => "slug",
        "title" => "title",
        "description" => "description",
        f if f.starts_with("sections") => "items",
        _ => return None,
    })
}

/// `spec`'s items as `(kind, id)` with the page's ticked set: what stays,
/// in its section and with its label; what is newly ticked goes to the first
/// section ("Services" if there is none).
fn with_items(
    mut spec: StatusPageSpec,
    ticked: &[(StatusItemKind, u64)],
    shown: &[u64],
) -> StatusPageSpec {
    for section in &mut spec.sections {
        section.items.retain(|i| ticked.contains(&(i.kind, i.id)));
    }
    let kept: Vec<(StatusItemKind, u64)> = spec
        .sections
        .iter()
        .flat_map(|s| s.items.iter().map(|i| (i.kind, i.id)))
        .collect();
    let new: Vec<StatusItem> = ticked
        .iter()
        .filter(|t| !kept.contains(t))
        .map(|&(kind, id)| StatusItem {
            kind,
            id,
            label: None,
            show_target: false,
            show_metrics: false,
        })
        .collect();
    if !new.is_empty() {
        if spec.sections.is_empty() {
            spec.sections.push(StatusSection {
                title: "Services".into(),
                items: Vec::new(),
            });
        }
        if let Some(first) = spec.sections.first_mut() {
            first.items.extend(new);
        }
    }
    for item in spec.sections.iter_mut().flat_map(|s| s.items.iter_mut()) {
        if item.kind == StatusItemKind::Check {
            item.show_target = shown.contains(&item.id);
        }
    }
    spec.sections.retain(|s| !s.items.is_empty());
    spec
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
    let ticked = RwSignal::new(Vec::<(StatusItemKind, u64)>::new());
    let shown = RwSignal::new(Vec::<u64>::new());
    let base = RwSignal::new(None::<StatusPageSpec>);
    let problem: Problem = RwSignal::new(None);
    let confirm = RwSignal::new(None::<u64>);
    let failed = RwSignal::new(None::<ApiError>);
    let op = Action::new_local(|op: &PageOp| {
        let op = op.clone();
        async move {
            match op {
                PageOp::Save(None, spec) => api::create_status_page(&spec).await.map(|_| ()),
                PageOp::Save(Some(id), spec) => {
                    api::update_status_page(id, &spec).await.map(|_| ())
                }
                PageOp::Delete(id) => api::delete_status_page(id).await,
                PageOp::Incident(id, incident, req) => {
                    api::post_incident(id, incident, &req).await.map(|_| ())
                }
            }
        }
    });
    Effect::new(move |_| match op.value().get() {
        Some(Ok(())) => {
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
        let items: Vec<&StatusItem> = spec
            .iter()
            .flat_map(|s| s.sections.iter().flat_map(|x| &x.items))
            .collect();
        ticked.set(items.iter().map(|i| (i.kind, i.id)).collect());
        shown.set(
            items
                .iter()
                .filter(|i| i.show_target)
                .map(|i| i.id)
                .collect(),
        );
        base.set(spec);
        problem.set(None);
        editing.set(Some(page.map(|p| p.id)));
    };
    let on_submit = move |ev: SubmitEvent| {
        ev.prevent_default();
        let spec = base.get_untracked().unwrap_or(StatusPageSpec {
            slug: String::new(),
            title: String::new(),
            description: None,
            sections: Vec::new(),
            maintenance: Vec::new(),
            private: false,
        });
        let mut spec = with_items(spec, &ticked.get_untracked(), &shown.get_untracked());
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
    let toggle = move |list: RwSignal<Vec<(StatusItemKind, u64)>>, item: (StatusItemKind, u64)| {
        list.update(|l| match l.iter().position(|x| *x == item) {
            Some(i) => {
                l.remove(i);
            }
            None => l.push(item),
        });
    };

    view! {
        <section class="card" aria-labelledby="status-pages-title" id="status-pages">
            <div class="card-head">
                <h2 class="card-title" id="status-pages-title">"Status pages"</h2>
                <button type="button" class="button small" id="new-status-page" disabled=move || !ready.get()
                    on:click=move |_| open(None)>"New status page"</button>
            </div>
            <p class="muted small">"A public page at /status/… with the checks and agents you tick, their uptime and your incidents. It shows no address, host name or URL unless you tick “show target”."</p>
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
                                        prop:checked=move || ticked.with(|t| t.contains(&item))
                                        on:change=move |_| toggle(ticked, item) />{name.clone()}</label>
                                    <label class="check muted small"><input type="checkbox" class="sp-show-target"
                                        prop:checked=move || shown.with(|s| s.contains(&check))
                                        on:change=move |_| shown.update(|s| match s.iter().position(|x| *x == check) {
                                            Some(i) => { s.remove(i); }
                                            None => s.push(check),
                                        }) />"show target"</label>
                                </div>
                            }
                        }).collect_view()}
                        {move || agent_list.get().into_iter().map(|a: AgentInfo| {
                            let item = (StatusItemKind::Agent, a.id);
                            view! {
                                <div class="sp-item" data-item=a.name.clone()>
                                    <label class="check"><input type="checkbox" class="sp-tick"
                                        prop:checked=move || ticked.with(|t| t.contains(&item))
                                        on:change=move |_| toggle(ticked, item) />{format!("{} (agent)", a.name)}</label>
                                </div>
                            }
                        }).collect_view()}
                        {field_error(problem, "items", "sp-error")}
                    </fieldset>
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
    op: Action<PageOp, Result<(), ApiError>>,
) -> impl IntoView + use<F> {
    let id = p.id;
    let link = format!("/status/{}", p.spec.slug);
    let items: usize = p.spec.sections.iter().map(|s| s.items.len()).sum();
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
                    <p class="muted small">{link.clone()} " · " {format!("{items} item{}", if items == 1 { "" } else { "s" })}
                        {p.spec.private.then_some(" · private")}</p>
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

    fn item(kind: StatusItemKind, id: u64, label: Option<&str>) -> StatusItem {
        StatusItem {
            kind,
            id,
            label: label.map(str::to_string),
            show_target: false,
            show_metrics: kind == StatusItemKind::Agent,
        }
    }

    #[test]
    fn ticking_keeps_sections_and_labels_and_adds_new_items_to_the_first() {
        use StatusItemKind::{Agent, Check};
        let spec = StatusPageSpec {
            slug: "home".into(),
            title: "Home".into(),
            description: None,
            sections: vec![
                StatusSection {
                    title: "Web".into(),
                    items: vec![item(Check, 1, Some("Site")), item(Check, 2, None)],
                },
                StatusSection {
                    title: "Boxes".into(),
                    items: vec![item(Agent, 7, Some("NAS"))],
                },
            ],
            maintenance: Vec::new(),
            private: false,
        };
        let out = with_items(spec.clone(), &[(Check, 1), (Agent, 7), (Check, 3)], &[3]);
        assert_eq!(out.sections.len(), 2);
        let web: Vec<(u64, Option<&str>, bool)> = out.sections[0]
            .items
            .iter()
            .map(|i| (i.id, i.label.as_deref(), i.show_target))
            .collect();
        assert_eq!(web, [(1, Some("Site"), false), (3, None, true)]);
        assert_eq!(out.sections[1].items, [item(Agent, 7, Some("NAS"))]);
        // Nothing ticked: no empty sections; a new page gets "Services".
        assert!(with_items(spec.clone(), &[], &[]).sections.is_empty());
        let fresh = StatusPageSpec {
            sections: Vec::new(),
            ..spec
        };
        let out = with_items(fresh, &[(Agent, 7)], &[]);
        assert_eq!(out.sections[0].title, "Services");
    }
}
