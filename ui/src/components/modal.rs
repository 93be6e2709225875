//! A modal dialog on the native `<dialog>` element: `showModal()` gives the
//! backdrop, focus containment and Escape to close for free; a click on the
//! backdrop closes it too.

use leptos::html::Dialog;
use leptos::prelude::*;

#[component]
pub fn Modal<C: IntoView + 'static>(
    title: String,
    on_close: Callback<()>,
    #[prop(optional)] id: &'static str,
    children: TypedChildren<C>,
) -> impl IntoView {
    let children = children.into_inner();
    let node = NodeRef::<Dialog>::new();
    let label = title.clone();
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| {
        if let Some(dialog) = node.get()
            && !dialog.open()
        {
            let _ = dialog.show_modal();
        }
    });
    view! {
        <dialog
            class="modal"
            node_ref=node
            id=(!id.is_empty()).then_some(id)
            aria-label=label
            on:close=move |_| on_close.run(())
            on:click=move |ev| {
                // A click on the backdrop lands on the dialog itself.
                #[cfg(feature = "hydrate")]
                if let (Some(t), Some(c)) = (ev.target(), ev.current_target())
                    && js_sys::Object::is(&t, &c)
                {
                    on_close.run(());
                }
                #[cfg(not(feature = "hydrate"))]
                let _ = ev;
            }
        >
            <div class="modal-body">
                <header class="modal-head">
                    <h2>{title}</h2>
                    <button type="button" class="icon-button modal-close" aria-label="Close"
                        on:click=move |_| on_close.run(())>"✕"</button>
                </header>
                {children()}
            </div>
        </dialog>
    }
}
