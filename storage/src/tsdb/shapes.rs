//! Shared key arrays for report rows.
//!
//! An agent's reports almost always have the same series, in the same
//! order: its shape changes only when a disk, an interface, a sensor or a
//! core comes or goes, and a fleet of similar machines shares a handful of
//! shapes. [`Shapes`] keeps one `Arc<[SeriesKey]>` per shape, so turning a
//! report into a [`Row`] allocates only its values: the keys are matched
//! against the interned array by visiting the report (no allocation) and
//! shared when they are equal. The engine, in turn, remembers each agent's
//! last array with its series ids, so staging such a row looks up nothing.
//!
//! Before this, every report built ~38 keys (about 110 allocations) on an
//! async worker that the writer thread then freed and hashed again.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::{Arc, Mutex};

use crate::model::{KeyRef, Report, SeriesKey, visit_samples};

use super::Row;

/// Shapes kept at most. When full, shapes no agent uses any more (held only
/// here) are dropped; if every one is in use, a new shape is not kept and
/// its rows get arrays of their own (correct, only slower).
const MAX_SHAPES: usize = 4096;

/// Interned key arrays by the hash of their keys.
#[derive(Default)]
pub(crate) struct Shapes {
    hasher: foldhash::fast::FixedState,
    by_hash: Mutex<HashMap<u64, Arc<[SeriesKey]>, foldhash::fast::RandomState>>,
}

impl Shapes {
    /// The row of one report, its keys shared with every report of that shape.
    pub(crate) fn row(&self, r: &Report) -> Row {
        let mut values = Vec::with_capacity(48);
        let mut h = self.hasher.build_hasher();
        visit_samples(r, |k, v| {
            k.hash(&mut h);
            values.push(v);
        });
        let hash = h.finish();
        let interned = self.lock().get(&hash).cloned();
        let keys = match interned {
            Some(keys) if same_keys(r, &keys) => keys,
            Some(_) => fresh_keys(r, values.len()), // a hash collision: keep the first
            None => {
                let keys = fresh_keys(r, values.len());
                self.insert(hash, keys.clone());
                keys
            }
        };
        Row {
            ts_ms: r.ts_ms,
            keys,
            values,
        }
    }

    fn insert(&self, hash: u64, keys: Arc<[SeriesKey]>) {
        let mut map = self.lock();
        if map.len() >= MAX_SHAPES {
            map.retain(|_, k| Arc::strong_count(k) > 1);
        }
        if map.len() < MAX_SHAPES {
            map.entry(hash).or_insert(keys);
        }
    }

    /// Drops the shapes no agent's last row uses any more (held only
    /// here): a shape names every container of its report, so containers
    /// that come and go would otherwise keep old shapes, and their keys,
    /// until the cache is full. Called by maintenance.
    pub(crate) fn prune(&self) {
        self.lock().retain(|_, k| Arc::strong_count(k) > 1);
    }

    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<[SeriesKey]>, foldhash::fast::RandomState>>
    {
        // Only inserts and lookups under it: never inconsistent after a panic.
        self.by_hash.lock().unwrap_or_else(|p| p.into_inner())
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

/// Whether `keys` are exactly the keys of `r`, in order.
fn same_keys(r: &Report, keys: &[SeriesKey]) -> bool {
    let mut i = 0;
    let mut same = true;
    visit_samples(r, |k: KeyRef<'_>, _| {
        same = same && keys.get(i).is_some_and(|key| k.matches(key));
        i += 1;
    });
    same && i == keys.len()
}

fn fresh_keys(r: &Report, n: usize) -> Arc<[SeriesKey]> {
    let mut keys = Vec::with_capacity(n);
    visit_samples(r, |k, _| keys.push(k.to_key()));
    keys.into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Cpu, Disk, Network, report_samples};

    fn report(cores: usize, mount: &str) -> Report {
        Report {
            ts_ms: 1_000,
            cpu: Some(Cpu {
                total_pct: 12.5,
                cores_pct: (0..cores).map(|i| i as f64).collect(),
                cores_mhz: vec![3_000; cores],
            }),
            load: Some([0.5, 0.25, 0.125]),
            disks: vec![Disk {
                mount: mount.into(),
                total_bytes: 100,
                used_bytes: 40,
                available_bytes: None,
                read_bps: Some(1),
                write_bps: None,
            }],
            networks: vec![Network {
                iface: "eth0".into(),
                rx_bps: 7,
                tx_bps: 8,
            }],
            ..Report::default()
        }
    }

    /// A row holds exactly the report's samples, rows of one shape share
    /// their keys, and a different shape gets different keys.
    #[test]
    fn rows_share_keys_by_shape_and_keep_every_sample() {
        let shapes = Shapes::default();
        let a = report(4, "/");
        let row = shapes.row(&a);
        assert_eq!(row.ts_ms, a.ts_ms);
        let pairs: Vec<(SeriesKey, f64)> = row.samples().map(|(k, v)| (k.clone(), v)).collect();
        assert_eq!(pairs, report_samples(&a));

        let mut b = report(4, "/");
        b.ts_ms = 6_000;
        if let Some(cpu) = &mut b.cpu {
            cpu.total_pct = 99.0;
        }
        let row_b = shapes.row(&b);
        assert!(Arc::ptr_eq(&row.keys, &row_b.keys));
        assert_eq!(row_b.values[0], 99.0);

        for other in [report(8, "/"), report(4, "/home"), report(0, "/")] {
            let r = shapes.row(&other);
            assert!(!Arc::ptr_eq(&row.keys, &r.keys));
            let pairs: Vec<(SeriesKey, f64)> = r.samples().map(|(k, v)| (k.clone(), v)).collect();
            assert_eq!(pairs, report_samples(&other));
        }
        assert_eq!(shapes.len(), 4);
    }

    /// A full interner drops the shapes nobody holds and keeps the others.
    #[test]
    fn a_full_interner_forgets_unused_shapes() {
        let shapes = Shapes::default();
        let held = shapes.row(&report(1, "/held"));
        for i in 0..MAX_SHAPES + 10 {
            shapes.row(&report(2, &format!("/m{i}")));
        }
        assert!(shapes.len() <= MAX_SHAPES);
        let again = shapes.row(&report(1, "/held"));
        assert!(Arc::ptr_eq(&held.keys, &again.keys));
    }
}
