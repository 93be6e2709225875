//! The encoding stage of remote write: accepted batches in, one
//! `WriteRequest` per batch into every endpoint's queue.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use prost::Message;
use storage::catalog::Catalog;
use storage::model::wire::Report;
use storage::model::{SeriesKey, report_samples};

use crate::metrics::names::{AgentLabels, series_labels};
use crate::remote_write::lifecycle::Endpoint;
use crate::remote_write::proto::{Label, Sample, TimeSeries, WriteRequest};

/// Agent names and hostnames are looked up again after this long.
const LABELS_TTL: Duration = Duration::from_secs(30);

/// An accepted batch on its way to the encoder.
pub(super) struct Batch {
    pub(super) agent_id: u64,
    pub(super) host: Option<String>,
    pub(super) reports: Vec<Report>,
}

/// Batches in, `WriteRequest`s into every queue.
pub(super) fn encoder(rx: Receiver<Batch>, endpoints: &[Arc<Endpoint>], catalog: &Catalog) {
    let mut names: HashMap<u64, (AgentLabels, Instant)> = HashMap::new();
    while let Ok(batch) = rx.recv() {
        let who = labels_of(&mut names, catalog, batch.agent_id, batch.host);
        let body = encode(&who, &batch.reports).encode_to_vec();
        if body.is_empty() {
            continue;
        }
        for e in endpoints {
            if let Err(err) = e.queue.push(&body) {
                tracing::error!(endpoint = %e.label, error = %err, "cannot queue samples for remote write");
            }
        }
    }
}

/// The agent's name and hostname, cached for [`LABELS_TTL`]; a hostname
/// sent with the batch wins.
fn labels_of(
    cache: &mut HashMap<u64, (AgentLabels, Instant)>,
    catalog: &Catalog,
    agent_id: u64,
    host: Option<String>,
) -> AgentLabels {
    let fresh = cache
        .get(&agent_id)
        .filter(|(_, at)| at.elapsed() < LABELS_TTL)
        .map(|(l, _)| l.clone());
    let mut who = match fresh {
        Some(l) => l,
        None => {
            let record = catalog.agent(agent_id).ok().flatten();
            AgentLabels {
                agent_id,
                agent: record.as_ref().map(|r| r.name.clone()).unwrap_or_default(),
                host: record
                    .and_then(|r| r.host)
                    .map(|h| h.hostname)
                    .unwrap_or_default(),
            }
        }
    };
    if let Some(h) = host {
        who.host = h;
    }
    cache.insert(agent_id, (who.clone(), Instant::now()));
    who
}

/// One `WriteRequest` for the reports of one agent: one series per metric and
/// label set, its samples in time order.
pub fn encode(who: &AgentLabels, reports: &[Report]) -> WriteRequest {
    let mut series: Vec<TimeSeries> = Vec::new();
    let mut index: HashMap<SeriesKey, usize> = HashMap::new();
    let mut sorted: Vec<&Report> = reports.iter().collect();
    sorted.sort_by_key(|r| r.ts_ms);
    for r in sorted {
        for (key, value) in report_samples(r) {
            let i = match index.get(&key) {
                Some(i) => *i,
                None => {
                    let Some((metric, labels)) = series_labels(who, &key) else {
                        continue;
                    };
                    let mut labels: Vec<Label> = labels
                        .into_iter()
                        .map(|(name, value)| Label { name, value })
                        .collect();
                    labels.push(Label {
                        name: "__name__".into(),
                        value: metric.name.into(),
                    });
                    labels.sort_by(|a, b| a.name.cmp(&b.name));
                    series.push(TimeSeries {
                        labels,
                        samples: Vec::new(),
                    });
                    index.insert(key.clone(), series.len() - 1);
                    series.len() - 1
                }
            };
            let scale = crate::metrics::names::prom_metric(&key.metric).map_or(1.0, |m| m.scale);
            series[i].samples.push(Sample {
                value: value * scale,
                timestamp: r.ts_ms,
            });
        }
    }
    WriteRequest { timeseries: series }
}

#[cfg(test)]
mod tests {
    use super::*;
    use storage::model::wire::Cpu;

    #[test]
    fn encodes_one_series_per_label_set_in_time_order() {
        let who = AgentLabels {
            agent_id: 3,
            agent: "nas".into(),
            host: "nas.lan".into(),
        };
        let rep = |ts, pct, mhz| Report {
            ts_ms: ts,
            cpu: Some(Cpu {
                total_pct: pct,
                cores_pct: vec![],
                cores_mhz: vec![mhz],
            }),
            ..Report::default()
        };
        let req = encode(&who, &[rep(2_000, 20.0, 3), rep(1_000, 10.0, 2)]);
        assert_eq!(req.timeseries.len(), 2);
        let cpu = &req.timeseries[0];
        let names: Vec<&str> = cpu.labels.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["__name__", "agent", "agent_id", "host"]);
        assert_eq!(cpu.labels[0].value, "statusmonitor_cpu_usage_percent");
        assert_eq!(
            cpu.samples,
            [
                Sample {
                    value: 10.0,
                    timestamp: 1_000
                },
                Sample {
                    value: 20.0,
                    timestamp: 2_000
                }
            ]
        );
        assert_eq!(req.timeseries[1].samples[0].value, 2e6, "MHz become Hz");
        // Concatenated encodings decode as one request with every series.
        let mut two = req.encode_to_vec();
        two.extend(req.encode_to_vec());
        assert_eq!(WriteRequest::decode(&two[..]).unwrap().timeseries.len(), 4);
    }
}
