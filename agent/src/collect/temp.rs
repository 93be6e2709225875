//! Temperatures of the sensors the OS exposes, in °C with one decimal (what
//! hwmon and SMC sensors resolve). Machines without sensors send none.

use storage::model::wire::Temperature;
use sysinfo::Components;

use super::round_to;

/// Readings outside this range are sensor errors, not temperatures.
const PLAUSIBLE_CELSIUS: std::ops::RangeInclusive<f64> = -40.0..=150.0;

pub(super) struct TempCollector {
    components: Option<Components>,
}

impl TempCollector {
    pub(super) fn new() -> Self {
        Self {
            components: Components::new_with_refreshed_list().ok(),
        }
    }

    /// `relist` also looks for sensors that appeared or vanished.
    pub(super) fn collect(&mut self, relist: bool) -> Vec<Temperature> {
        let Some(components) = self.components.as_mut() else {
            return Vec::new();
        };
        components.refresh(relist);
        let mut out: Vec<Temperature> = components
            .iter()
            .filter_map(|c| {
                let t = f64::from(c.temperature()?);
                PLAUSIBLE_CELSIUS.contains(&t).then(|| Temperature {
                    sensor: c.label().to_owned(),
                    celsius: round_to(t, 1),
                })
            })
            .collect();
        out.sort_by(|a, b| a.sensor.cmp(&b.sensor));
        out
    }
}
