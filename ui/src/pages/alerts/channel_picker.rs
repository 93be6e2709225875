//! The rule form's channel picker: which of the caller's channels a rule
//! notifies (none ticked: the default channels), and whether it is urgent
//! (notifies during quiet hours).

use leptos::prelude::*;

use super::notifications::Channels;
use super::rule_form::RuleForm;

#[component]
pub(super) fn ChannelPicker(form: RuleForm) -> impl IntoView {
    let channels = use_context::<Channels>();
    view! {
        <fieldset class="wide" id="rule-channels">
            <legend>"Notify"</legend>
            {move || channels.and_then(|c| c.get()).and_then(|r| r.ok()).unwrap_or_default().into_iter().map(|c| {
                let id = c.id;
                view! {
                    <label class="check">
                        <input type="checkbox" class="rule-channel" value=id.to_string()
                            prop:checked=move || form.channels.with(|l| l.contains(&id))
                            on:change=move |ev| {
                                let on = event_target_checked(&ev);
                                form.channels.update(|l| {
                                    l.retain(|x| *x != id);
                                    if on { l.push(id); }
                                });
                            } />
                        {c.name} {c.default.then_some(" (default)")}
                    </label>
                }
            }).collect_view()}
            <label class="check">
                <input type="checkbox" id="rule-urgent" bind:checked=form.urgent />
                "Urgent (also during quiet hours)"
            </label>
            <span class="muted small" id="rule-channels-note">{move || if form.channels_gone.get() {
                "A channel this rule named was deleted; with none left it uses your default channels."
            } else {
                "None ticked: your default channels."
            }}</span>
        </fieldset>
    }
}
