use super::*;
use std::sync::atomic::AtomicBool;

/// Paced ingest, one report at a time at `rate` per second over `agents`
/// (round-robin), for `secs`; the latency of each request in ms.
fn paced_latencies(url: &str, agents: &[(u64, String)], rate: f64, secs: f64) -> Vec<f64> {
    let agent = ureq::Agent::new_with_defaults();
    let bodies = Bodies::new(99);
    let start = Instant::now();
    let mut lat = Vec::new();
    let mut i = 0usize;
    loop {
        let due = start + Duration::from_secs_f64(i as f64 / rate);
        if due.duration_since(start).as_secs_f64() >= secs {
            break;
        }
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let (_, token) = &agents[i % agents.len()];
        lat.push(send(&agent, url, token, &bodies.body(i, now_ms())));
        i += 1;
    }
    lat
}

pub fn run(quick: bool) {
    // Raw data kept 2 d, so the day backfilled is accepted whole.
    let server = Server::start(&["--raw-retention", "2d"]);
    let api = Api::login(&server);
    let agents = api.agents(100);
    let (id, token) = agents[0].clone();
    // A day of 5 s reports for the agent the queries read.
    let n = backfill(&server.url, id, &token, now_ms() - 10_000, 1);
    let settle = server.settle(Duration::from_secs(if quick { 30 } else { 60 }));
    let secs = if quick { 10.0 } else { 30.0 };
    let rate = 100.0;
    let (idle50, idle99) = summary(paced_latencies(&server.url, &agents, rate, secs));

    // The most work a legal request can ask for: every raw sample of the
    // raw tier's whole retention (24 h), 20 series, in 5,000 points of
    // 20 s (longer ranges go to the aggregates, far less work).
    let worst = format!("/api/history/{id}/cpu?start=-24h&tier=5s&max_points=5000");
    let stop = Arc::new(AtomicBool::new(false));
    // 200, 429, 503, other; and the time of each 200 in ms.
    let answers = Arc::new([0, 1, 2, 3].map(|_| AtomicU64::new(0)));
    let ok_ms = Arc::new(Mutex::new(Vec::new()));
    let clients: Vec<_> = (0..10)
        .map(|_| {
            let (stop, answers, ok_ms) = (stop.clone(), answers.clone(), ok_ms.clone());
            let (url, bearer, path) = (api.url.clone(), api.bearer.clone(), worst.clone());
            std::thread::spawn(move || {
                let agent: ureq::Agent = ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .build()
                    .into();
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    let mut r = agent
                        .get(&format!("{url}{path}"))
                        .header("authorization", &bearer)
                        .call()
                        .expect("history request");
                    let _ = r.body_mut().read_to_vec();
                    let slot = match r.status().as_u16() {
                        200 => {
                            ok_ms.lock().unwrap().push(t.elapsed().as_secs_f64() * 1e3);
                            0
                        }
                        429 => 1,
                        503 => 2,
                        _ => 3,
                    };
                    answers[slot].fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let (busy50, busy99) = summary(paced_latencies(&server.url, &agents, rate, secs));
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().expect("history client");
    }
    let [ok, limited, over, other] = [0, 1, 2, 3].map(|i| answers[i].load(Ordering::Relaxed));
    let (q50, q99) = summary(ok_ms.lock().unwrap().clone());
    println!(
        "ingest under a history flood: p50 {busy50:.2} ms, p99 {busy99:.2} ms, against {idle50:.2} / {idle99:.2} ms idle: p99 ×{:.2} [{}]",
        busy99 / idle99,
        load()
    );
    println!(
        "  history answers: {ok} × 200 (p50 {q50:.0} ms, p99 {q99:.0} ms), {limited} × 429, {over} × 503, {other} other"
    );
    println!(
        "  method: 100 agents; {n} reports of one agent at 5 s backfilled (24 h), {settle:.0}s to settle (server with --raw-retention 2d); ingest paced at {rate:.0} reports/s (one keep-alive ureq client, one report per POST) for {secs}s idle, then {secs}s while 10 threads of the same account loop on GET {worst} (every raw sample kept, 5,000 points; the server's defaults: 4 queries per user, 10 s budget)\n"
    );
}
