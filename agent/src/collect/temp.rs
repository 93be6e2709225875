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
                    sensor: super::label(c.label()).unwrap_or_else(|| "sensor".to_owned()),
                    celsius: round_to(t, 1),
                })
            })
            .collect();
        out.sort_by(|a, b| a.sensor.cmp(&b.sensor));
        disambiguate(&mut out);
        out.truncate(super::MAX_ITEMS);
        out
    }
}

/// Sensor names must be unique in a report (the server keys series by them):
/// repeated names get ` #2`, ` #3`... in their sorted order.
fn disambiguate(temps: &mut [Temperature]) {
    let mut i = 0;
    while i < temps.len() {
        let mut j = i + 1;
        while j < temps.len() && temps[j].sensor == temps[i].sensor {
            j += 1;
        }
        for (n, t) in temps[i + 1..j].iter_mut().enumerate() {
            t.sensor = format!("{} #{}", t.sensor, n + 2);
        }
        i = j;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_sensor_names_are_made_unique() {
        let mut t: Vec<Temperature> = ["acpitz", "acpitz", "nvme", "acpitz"]
            .iter()
            .map(|s| Temperature {
                sensor: (*s).into(),
                celsius: 40.0,
            })
            .collect();
        t.sort_by(|a, b| a.sensor.cmp(&b.sensor));
        disambiguate(&mut t);
        let names: Vec<_> = t.iter().map(|t| t.sensor.as_str()).collect();
        assert_eq!(names, ["acpitz", "acpitz #2", "acpitz #3", "nvme"]);
    }
}
