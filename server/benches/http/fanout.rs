//! The ingest → WebSocket fan-out benchmark and its subscribers.

use super::*;

/// The subscribers of the fan-out benchmark.
#[derive(Clone, Copy, PartialEq)]
pub(crate) enum WsClient {
    /// One thread reading every socket in batches, each frame timed by the
    /// kernel's receive timestamp (`stamped_ws`).
    Stamped,
    /// A task per socket woken for every frame, timed when its read returns
    /// (`light_ws`).
    Reactive,
    /// A tokio-tungstenite stream per socket, timed when a message is out.
    Tungstenite,
}

/// Ingest → WebSocket delivery to 1,000 subscribers of one agent.
pub(crate) fn ws_fanout(
    server: &Server,
    access: &str,
    ws_id: u64,
    ws_token: &str,
    quick: bool,
    client: WsClient,
) {
    let subscribers = 1_000;
    let ws_url = format!(
        "{}/api/ws/{ws_id}?token={access}",
        server.url.replace("http://", "ws://")
    );
    let reports = if quick { 20 } else { 100 };
    // When report i was POSTed: nanoseconds since `epoch` (Instant-based
    // clients) or since the Unix epoch (kernel timestamps); 0 = not yet.
    let epoch = Instant::now();
    let sent_at: Arc<Vec<AtomicU64>> = Arc::new((0..reports).map(|_| AtomicU64::new(0)).collect());
    // Report i carries ts_ms = base + i, so a frame says which report it is;
    // a second ahead, so even report 0 is newer than the agent's activation
    // report (one in the same millisecond would not be live news).
    let base = now_ms() + 1_000;
    // The POSTs go out on a 100 ms grid from `start` (set once the
    // subscribers are connected).
    let period = Duration::from_millis(100);
    let start: Arc<OnceLock<Instant>> = Arc::default();
    let post_all = {
        let (url, token, sent_at, start) = (
            server.url.clone(),
            ws_token.to_string(),
            sent_at.clone(),
            start.clone(),
        );
        move || {
            let agent = ureq::Agent::new_with_defaults();
            let start = *start.get_or_init(Instant::now);
            for i in 0..reports {
                let body = batch(&[report(base + i as i64, ws_id)]);
                std::thread::sleep(
                    (start + period * i as u32).saturating_duration_since(Instant::now()),
                );
                let at = if client == WsClient::Stamped {
                    unix_nanos()
                } else {
                    epoch.elapsed().as_nanos() as u64
                };
                sent_at[i].store(at.max(1), Ordering::Release);
                send(&agent, &url, &token, &body);
            }
        }
    };
    // Each branch connects its subscribers, notes the CPU counters, then
    // starts the POSTs: the figure covers the sending phase only.
    let (lat, (cpu0, client0), workers) = if client == WsClient::Stamped {
        let mut pool = stamped_ws::Pool::connect(&ws_url, subscribers);
        let cpu = (server.cpu_seconds(), process_cpu_seconds("self"));
        let first_post = *start.get_or_init(Instant::now);
        let poster = std::thread::spawn(post_all);
        // Read halfway between two POSTs: the fan-out of a report has both
        // cores to itself unless it takes longer than 50 ms.
        let lat = pool.collect(
            reports,
            first_post + period / 2,
            period,
            |frame_ts, rx_ns| {
                let i = usize::try_from(frame_ts - base).ok()?;
                let at = sent_at.get(i)?.load(Ordering::Acquire);
                (at > 0).then(|| (i, (rx_ns as f64 - at as f64) / 1e6))
            },
        );
        poster.join().expect("poster");
        (lat, cpu, 0)
    } else {
        // STATUSMONITOR_BENCH_WS_WORKERS: the subscribers' tokio workers (2).
        let workers: usize = std::env::var("STATUSMONITOR_BENCH_WS_WORKERS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(2);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .enable_all()
            .build()
            .expect("runtime");
        let latencies: Arc<Mutex<Vec<(usize, f64)>>> = Arc::default();
        let cpu = rt.block_on(async {
            let mut tasks = Vec::new();
            for _ in 0..subscribers {
                let (sent_at, latencies) = (sent_at.clone(), latencies.clone());
                // Latency of the report frame `text` received at `received`.
                let record =
                    move |text: &[u8], received: Instant, local: &mut Vec<(usize, f64)>| {
                        let Some(ts) = report_ts(text) else {
                            return false;
                        };
                        let at = usize::try_from(ts - base)
                            .ok()
                            .and_then(|i| sent_at.get(i))
                            .map_or(0, |a| a.load(Ordering::Acquire));
                        if at > 0 {
                            let at = epoch + Duration::from_nanos(at);
                            local.push((
                                (ts - base) as usize,
                                received.duration_since(at).as_secs_f64() * 1e3,
                            ));
                        }
                        true
                    };
                if client == WsClient::Reactive {
                    let mut sock = light_ws::connect(&ws_url).await;
                    tasks.push(tokio::spawn(async move {
                        let mut local = Vec::with_capacity(reports);
                        let mut got = 0;
                        while got < reports {
                            let Some((text, received)) = sock.next_text().await else {
                                break;
                            };
                            if record(&text, received, &mut local) {
                                got += 1;
                            }
                        }
                        latencies.lock().unwrap().extend(local);
                    }));
                } else {
                    let (mut ws, _) = tokio_tungstenite::connect_async(&ws_url)
                        .await
                        .expect("websocket");
                    let _snapshot = ws.next().await;
                    tasks.push(tokio::spawn(async move {
                        let mut local = Vec::with_capacity(reports);
                        let mut got = 0;
                        while let Some(Ok(msg)) = ws.next().await {
                            let received = Instant::now();
                            let Ok(text) = msg.into_text() else { continue };
                            if record(text.as_bytes(), received, &mut local) {
                                got += 1;
                            }
                            if got == reports {
                                break;
                            }
                        }
                        latencies.lock().unwrap().extend(local);
                    }));
                }
            }
            let cpu = (server.cpu_seconds(), process_cpu_seconds("self"));
            tokio::task::spawn_blocking(post_all).await.expect("poster");
            for t in tasks {
                let _ = tokio::time::timeout(Duration::from_secs(30), t).await;
            }
            cpu
        });
        let lat = std::mem::take(&mut *latencies.lock().unwrap());
        (lat, cpu, workers)
    };
    let server_cpu = server.cpu_seconds() - cpu0;
    let client_cpu = process_cpu_seconds("self") - client0;
    let count = lat.len();
    // STATUSMONITOR_BENCH_WS_DETAIL=1: first, median and last delivery of
    // each report, to tell a slow report from a slow fan-out.
    if std::env::var("STATUSMONITOR_BENCH_WS_DETAIL").is_ok_and(|v| v != "0") {
        let mut by_report = vec![Vec::new(); reports];
        for &(i, ms) in &lat {
            by_report[i].push(ms);
        }
        for (i, mut v) in by_report.into_iter().enumerate() {
            v.sort_by(f64::total_cmp);
            if let (Some(first), Some(last)) = (v.first(), v.last()) {
                println!(
                    "  report {i:3}: first {first:6.2} ms, median {:6.2} ms, last {last:6.2} ms ({} deliveries)",
                    v[v.len() / 2],
                    v.len()
                );
            }
        }
    }
    let (p50, p99) = summary(lat.into_iter().map(|(_, ms)| ms).collect());
    let (what, how) = match client {
        WsClient::Stamped => (
            "arrival at the subscriber's socket (kernel timestamp), subscribers reading in batches",
            "all subscribers on one thread of this process: raw sockets after the HTTP upgrade, in one epoll set, read once per report, 50 ms after its POST (the thread sleeps in between, so a frame arriving wakes nobody); latency = SO_TIMESTAMPNS of the read that completes the report frame (when its last bytes reached the subscriber's TCP socket; on loopback that is inside the server's send) − wall clock just before the POST",
        ),
        WsClient::Reactive => (
            "receipt in user space, subscribers woken per frame",
            "the subscribers run in this process as tasks on tokio workers, each a plain TCP socket after the HTTP upgrade, reading and parsing every frame itself (header, length, text payload: no tungstenite stream), latency taken when the read that completes the report frame returns",
        ),
        WsClient::Tungstenite => (
            "receipt in user space, tokio-tungstenite subscribers",
            "each subscriber a tokio-tungstenite stream on tokio workers (STATUSMONITOR_BENCH_WS_CLIENT=tungstenite)",
        ),
    };
    println!(
        "ingest → WebSocket, {subscribers} subscribers, {what}: p50 {p50:.2} ms, p99 {p99:.2} ms ({count} deliveries); CPU per delivery: server {:.1} µs, subscribers {:.1} µs [{}]",
        server_cpu / count.max(1) as f64 * 1e6,
        client_cpu / count.max(1) as f64 * 1e6,
        load()
    );
    println!(
        "  method: {subscribers} WebSockets on one agent; {reports} reports POSTed 100 ms apart; latency = receipt − just before the POST (includes the durable write); CPU = utime+stime of the server and of this process over the sending phase (the POSTs included) / deliveries; {how}{}\n",
        if workers > 0 {
            format!(" ({workers} workers)")
        } else {
            String::new()
        }
    );
}

/// The `ts_ms` of a report frame (its first), without a full JSON parse: a
/// thousand subscribers parsing would compete with the server for the cores.
pub(crate) fn report_ts(text: &[u8]) -> Option<i64> {
    if !text.starts_with(br#"{"type":"report""#) {
        return None;
    }
    let (_, rest) = std::str::from_utf8(text).ok()?.split_once(r#""ts_ms":"#)?;
    let end = rest.find(|c: char| !c.is_ascii_digit())?;
    rest[..end].parse().ok()
}

pub(crate) fn unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}
