//! Containers from a Docker-API engine, against the fake engine of
//! `fake_engine.rs`: figures, restarts and health read right, a slow stats
//! call left out within the deadline, a broken or missing engine giving no
//! container list while the host metrics go on.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use agent::collect::containers::ContainerCollector;
use agent::collect::{Collector, ContainerConfig, Filter};

use crate::fake_engine::{FakeEngine, container};

fn config(socket: PathBuf) -> ContainerConfig {
    ContainerConfig {
        disabled: false,
        socket: Some(socket),
    }
}

#[test]
fn containers_come_with_state_health_restarts_memory_and_rates() {
    let mut web = container("a1", "web");
    web.status = "Up 2 hours (unhealthy)".into();
    web.restarts = 2;
    let mut job = container("b2", "backup");
    job.state = "exited".into();
    job.status = "Exited (0) 3 minutes ago".into();
    let engine = FakeEngine::start(vec![web, job]);
    let mut c =
        ContainerCollector::new(&config(engine.socket.clone()), Duration::from_secs(5)).unwrap();
    let first = c.collect().expect("a list");
    assert_eq!(first.len(), 2);
    // Sorted by name; the first reading has no rate yet.
    assert_eq!(first[0].name, "backup");
    assert_eq!(first[1].cpu_pct, None);
    engine.with(|e| {
        let w = &mut e.containers[0];
        w.cpu_ns += 300_000_000;
        w.rx += 50_000;
        w.read += 4096;
        e.requests.clear();
    });
    // Rates need real time between two readings (at least 200 ms).
    std::thread::sleep(Duration::from_millis(300));
    let list = c.collect().expect("a list");
    let web = list.iter().find(|c| c.name == "web").unwrap();
    assert_eq!(web.id, format!("{:0<64}", "a1"));
    assert_eq!(web.image, "nginx:1.27");
    assert_eq!(web.state, "running");
    assert_eq!(web.health.as_deref(), Some("unhealthy"));
    assert_eq!(web.restarts, Some(2));
    assert_eq!(web.mem_used_bytes, Some(6_537_216 - 1_000_000));
    assert_eq!(web.mem_limit_bytes, Some(67_108_864));
    let cpu = web.cpu_pct.expect("a CPU rate on the second reading");
    // 0.3 s of CPU in a bit more than 0.3 s: up to one core.
    assert!(cpu > 10.0 && cpu <= 100.0, "{cpu}");
    assert!(web.net_rx_bps.is_some_and(|r| r > 0 && r <= 166_667));
    assert_eq!(web.net_tx_bps, Some(0));
    assert!(web.block_read_bps.is_some_and(|r| r > 0));
    let job = list.iter().find(|c| c.name == "backup").unwrap();
    assert_eq!(
        (job.state.as_str(), job.health.as_deref()),
        ("exited", None)
    );
    assert_eq!(job.cpu_pct, None);
    let requests = engine.with(|e| e.requests.clone());
    // No stats for a stopped container, and no inspect when nothing changed.
    assert!(
        !requests
            .iter()
            .any(|p| p.contains("b2") && p.contains("stats"))
    );
    assert!(
        !requests
            .iter()
            .any(|p| p.ends_with("/json") && p.contains("a1"))
    );
    assert!(
        requests
            .iter()
            .any(|p| p.contains("stream=false&one-shot=true"))
    );
}

/// Containers come and go (`docker run --rm`, compose recreating with new
/// ids): what the agent remembers of an id is freed a few collections after
/// it is gone, so churn does not grow the agent's memory.
#[test]
fn gone_containers_are_forgotten_after_a_few_collections() {
    use agent::collect::containers::FORGET_AFTER;
    let engine = FakeEngine::start(vec![container("a1", "web"), container("b2", "db")]);
    let mut c =
        ContainerCollector::new(&config(engine.socket.clone()), Duration::from_secs(5)).unwrap();
    c.collect().expect("a list");
    assert_eq!(c.remembered(), 2);
    // db is removed: kept for a few collections (a missed reading keeps
    // its baseline), then forgotten.
    engine.with(|e| e.containers.retain(|c| c.name != "db"));
    for _ in 1..FORGET_AFTER {
        c.collect().expect("a list");
        assert_eq!(c.remembered(), 2);
    }
    c.collect().expect("a list");
    assert_eq!(c.remembered(), 1, "db forgotten");
    // 50 short-lived containers, each for one collection: the memory stays
    // bounded by the last few collections' containers.
    for i in 0..50 {
        engine.with(|e| {
            e.containers.retain(|c| c.name == "web");
            e.containers
                .push(container(&format!("c{i}"), &format!("job-{i}")));
        });
        let list = c.collect().expect("a list");
        assert_eq!(list.len(), 2);
        assert!(
            c.remembered() <= 1 + FORGET_AFTER as usize,
            "{} ids remembered",
            c.remembered()
        );
    }
}

/// A container that started seconds ago may have restarted: it is
/// inspected, once; "Up 8 seconds" later says the same start, "Up 1 second"
/// a new one.
#[test]
fn a_recent_start_is_inspected_once_and_a_new_start_again() {
    let mut web = container("a1", "web");
    web.status = "Up 3 seconds".into();
    let engine = FakeEngine::start(vec![web]);
    let mut c =
        ContainerCollector::new(&config(engine.socket.clone()), Duration::from_secs(5)).unwrap();
    let inspects = |engine: &FakeEngine| {
        engine.with(|e| {
            let n = e
                .requests
                .iter()
                .filter(|p| p.ends_with("/json") && p.contains("a1"))
                .count();
            e.requests.clear();
            n
        })
    };
    c.collect().expect("a list");
    assert_eq!(inspects(&engine), 1);
    engine.with(|e| e.containers[0].status = "Up 8 seconds".into());
    c.collect().expect("a list");
    assert_eq!(inspects(&engine), 0, "the start it was inspected after");
    engine.with(|e| {
        e.containers[0].status = "Up 1 second".into();
        e.containers[0].restarts = 1;
    });
    let list = c.collect().expect("a list");
    assert_eq!(inspects(&engine), 1, "a new start");
    assert_eq!(list[0].restarts, Some(1));
}

#[test]
fn a_stats_call_that_does_not_answer_in_time_is_left_out() {
    let slow = container("c3", "zz-slow");
    let engine = FakeEngine::start(vec![container("a1", "web"), slow.clone()]);
    engine.with(|e| e.slow = Some((slow.id.clone(), Duration::from_secs(3))));
    // A 1 s interval: a 400 ms budget for the whole collection.
    let mut c =
        ContainerCollector::new(&config(engine.socket.clone()), Duration::from_secs(1)).unwrap();
    let start = Instant::now();
    let list = c.collect().expect("the list answered");
    let took = start.elapsed();
    assert!(took < Duration::from_millis(900), "waited {took:?}");
    let zz = list.iter().find(|c| c.name == "zz-slow").unwrap();
    assert_eq!(zz.state, "running", "listed, without figures");
    assert_eq!((zz.mem_used_bytes, zz.cpu_pct), (None, None));
    let web = list.iter().find(|c| c.name == "web").unwrap();
    assert!(web.mem_used_bytes.is_some());
}

#[test]
fn a_broken_or_missing_engine_gives_no_list_and_the_host_goes_on() {
    let engine = FakeEngine::start(vec![container("a1", "web")]);
    engine.with(|e| e.garbage = true);
    let mut collector = Collector::new(Filter::default(), Some(5_000))
        .with_containers(&config(engine.socket.clone()), Duration::from_secs(5));
    let report = collector.collect(1_000);
    assert_eq!(report.containers, None, "absent, never an empty list");
    assert!(report.uptime_s.is_some() || cfg!(not(target_os = "linux")));
    // The engine recovers: containers are back.
    engine.with(|e| e.garbage = false);
    let report = collector.collect(6_000);
    assert_eq!(report.containers.map(|l| l.len()), Some(1));

    let mut gone = Collector::new(Filter::default(), Some(5_000)).with_containers(
        &config(PathBuf::from("/nonexistent/docker.sock")),
        Duration::from_secs(5),
    );
    assert_eq!(gone.collect(1_000).containers, None);
    let mut off = Collector::new(Filter::default(), Some(5_000)).with_containers(
        &ContainerConfig {
            disabled: true,
            socket: Some(engine.socket.clone()),
        },
        Duration::from_secs(5),
    );
    assert_eq!(off.collect(1_000).containers, None);
}

#[test]
fn an_empty_engine_is_an_empty_list() {
    let engine = FakeEngine::start(Vec::new());
    let mut c =
        ContainerCollector::new(&config(engine.socket.clone()), Duration::from_secs(5)).unwrap();
    assert_eq!(c.collect(), Some(Vec::new()));
}

/// A collection's calls (the list, an inspect, a stats call per running
/// container) share one kept-alive connection; a slow answer left out
/// drops that connection, and the calls after it open one new one.
#[test]
fn one_connection_serves_a_whole_collection() {
    let names = ["a1", "b2", "c3", "d4", "e5"];
    let engine = FakeEngine::start(
        names
            .iter()
            .map(|id| container(id, &format!("web-{id}")))
            .collect(),
    );
    let mut c =
        ContainerCollector::new(&config(engine.socket.clone()), Duration::from_secs(5)).unwrap();
    engine.with(|e| e.connections = 0);
    let list = c.collect().expect("a list");
    assert_eq!(list.len(), 5);
    assert!(list.iter().all(|c| c.mem_used_bytes.is_some()));
    let (connections, requests) = engine.with(|e| (e.connections, e.requests.len()));
    assert_eq!(requests, 1 + 5 + 5, "the list, an inspect and stats each");
    assert_eq!((connections, c.connections()), (1, 1));

    // An engine that closes idle kept connections (after 4 answers
    // here): the call that finds its connection closed is made again on a
    // new one, and nothing is left out.
    engine.with(|e| {
        e.answers_per_connection = Some(4);
        e.connections = 0;
        e.requests.clear();
    });
    let list = c.collect().expect("a list");
    assert!(list.iter().all(|c| c.mem_used_bytes.is_some()));
    let (connections, requests) = engine.with(|e| (e.connections, e.requests.len()));
    // The list and 5 stats calls (nothing to inspect): 4 + 2.
    assert_eq!((requests, connections, c.connections()), (6, 2, 2));
}

/// Podman (its answers carry `Libpod-Api-Version`): one stats call for
/// every running container instead of one each, with the same figures; a
/// container missing from it gets its own call, and a failed bulk call
/// falls back to one call per container.
#[test]
fn podman_gives_every_containers_stats_in_one_call() {
    let mut job = container("c3", "job");
    job.state = "exited".into();
    job.status = "Exited (0) 3 minutes ago".into();
    let engine = FakeEngine::start(vec![container("a1", "web"), container("b2", "db"), job]);
    engine.with(|e| e.podman = true);
    let mut c =
        ContainerCollector::new(&config(engine.socket.clone()), Duration::from_secs(5)).unwrap();
    c.collect().expect("a list");
    let stats_calls = |engine: &FakeEngine| {
        engine.with(|e| {
            let bulk = e.requests.iter().filter(|p| p.contains("/libpod/")).count();
            let each = e
                .requests
                .iter()
                .filter(|p| p.contains("/stats") && !p.contains("/libpod/"))
                .count();
            e.requests.clear();
            (bulk, each)
        })
    };
    assert_eq!(stats_calls(&engine), (1, 0));
    engine.with(|e| {
        e.containers[0].cpu_ns += 300_000_000;
        e.containers[0].rx += 50_000;
    });
    std::thread::sleep(Duration::from_millis(300));
    let list = c.collect().expect("a list");
    assert_eq!(stats_calls(&engine), (1, 0));
    let web = list.iter().find(|c| c.name == "web").unwrap();
    assert_eq!(web.mem_used_bytes, Some(6_537_216 - 1_000_000));
    assert_eq!(web.mem_limit_bytes, Some(67_108_864));
    assert!(
        web.cpu_pct.is_some_and(|p| p > 10.0 && p <= 100.0),
        "{web:?}"
    );
    assert!(web.net_rx_bps.is_some_and(|r| r > 0));
    assert_eq!(web.block_read_bps, Some(0));
    let job = list.iter().find(|c| c.name == "job").unwrap();
    assert_eq!(job.mem_used_bytes, None, "stopped: no stats");

    // db started after the bulk answer was made: its own call.
    let db = format!("{:0<64}", "b2");
    engine.with(|e| e.podman_stats_skip = vec![db]);
    let list = c.collect().expect("a list");
    assert_eq!(stats_calls(&engine), (1, 1));
    assert!(
        list.iter()
            .all(|c| c.state != "running" || c.mem_used_bytes.is_some())
    );

    // The bulk call fails: one call per running container, nothing left out.
    engine.with(|e| e.podman_stats_fail = true);
    let list = c.collect().expect("a list");
    assert_eq!(stats_calls(&engine), (1, 2));
    assert!(
        list.iter()
            .all(|c| c.state != "running" || c.mem_used_bytes.is_some())
    );
    // ...and for the next minute without trying it again.
    c.collect().expect("a list");
    assert_eq!(stats_calls(&engine), (0, 2));
}
