//! A uPlot time-series chart. The server renders an empty box of the final
//! height (no layout shift); after hydration an effect creates the uPlot
//! instance in it through the JS glue (`ui/js/charts.js`), feeds it new data
//! whenever the `data` signal changes, and destroys it with the component.

use leptos::html::Div;
use leptos::prelude::*;

use crate::chart_data::{ChartData, ChartSpec};

#[cfg(feature = "hydrate")]
mod js {
    use wasm_bindgen::prelude::*;

    #[wasm_bindgen(module = "/js/uPlot.min.esm.js")]
    extern "C" {
        /// The uPlot class (the module's default export).
        #[wasm_bindgen(thread_local_v2, js_name = default)]
        pub static UPLOT: JsValue;
    }

    #[wasm_bindgen(module = "/js/charts.js")]
    extern "C" {
        #[wasm_bindgen(js_name = createChart)]
        pub fn create_chart(
            uplot: &JsValue,
            el: &web_sys::HtmlElement,
            spec: &str,
            data: &str,
        ) -> JsValue;
        #[wasm_bindgen(js_name = updateChart)]
        pub fn update_chart(handle: &JsValue, data: &str, reset: bool);
        #[wasm_bindgen(js_name = destroyChart)]
        pub fn destroy_chart(handle: &JsValue);
    }
}

/// A chart of `data` drawn as `spec` says. When the spec changes (other
/// series, another theme) the chart is rebuilt; when only the data changes it
/// is updated in place, keeping a drag-zoom.
#[component]
pub fn Chart(
    #[prop(into)] spec: Signal<ChartSpec>,
    #[prop(into)] data: Signal<ChartData>,
    /// Accessible name of the chart.
    #[prop(into)]
    label: String,
) -> impl IntoView {
    let node = NodeRef::<Div>::new();
    let height = spec.with_untracked(|s| s.height);

    #[cfg(feature = "hydrate")]
    {
        use crate::components::theme::{Theme, ThemeMode};
        use wasm_bindgen::JsValue;
        let handle = StoredValue::new_local(None::<(JsValue, ChartSpec, ThemeMode)>);
        let theme = use_context::<Theme>();
        Effect::new(move |_| {
            let spec = spec.get();
            let json = data.with(ChartData::to_json);
            let mode = theme.map(|t| t.mode.get()).unwrap_or_default();
            let Some(el) = node.get() else { return };
            handle.update_value(|h| match h {
                Some((chart, old, old_mode)) if *old == spec && *old_mode == mode => {
                    js::update_chart(chart, &json, false);
                }
                _ => {
                    if let Some((chart, _, _)) = h.take() {
                        js::destroy_chart(&chart);
                    }
                    let spec_json = serde_json::to_string(&spec).unwrap_or_default();
                    let chart = js::UPLOT.with(|u| js::create_chart(u, &el, &spec_json, &json));
                    *h = Some((chart, spec, mode));
                }
            });
        });
        on_cleanup(move || {
            handle.update_value(|h| {
                if let Some((chart, _, _)) = h.take() {
                    js::destroy_chart(&chart);
                }
            });
        });
    }

    #[cfg(not(feature = "hydrate"))]
    let _ = data;

    view! {
        <div
            node_ref=node
            role="img"
            aria-label=label
            // A class per height (no `style` attribute: strict CSP).
            class=format!("chart chart-h-{height}")
        ></div>
    }
}
