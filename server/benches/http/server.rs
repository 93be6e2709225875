//! The server under test (its own process and data directory) and a logged-in API client.

use super::*;

pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) url: String,
    pub(crate) _dir: tempfile::TempDir,
}

impl Server {
    pub(crate) fn start(extra: &[&str]) -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let listen = format!("127.0.0.1:{}", free_port());
        let child = spawn_server(&listen, &dir.path().join("data"), extra);
        let url = format!("http://{listen}");
        wait_healthy(&url, Duration::from_secs(30), Duration::from_millis(50));
        Server {
            child,
            url,
            _dir: dir,
        }
    }

    /// (utime + stime) in seconds, from /proc/PID/stat.
    pub(crate) fn cpu_seconds(&self) -> f64 {
        process_cpu_seconds(&self.child.id().to_string())
    }

    /// Waits until the server spends under 5 % of a core over one second
    /// (its background work is done), at most `max`; returns the seconds waited.
    pub(crate) fn settle(&self, max: Duration) -> f64 {
        let start = Instant::now();
        while start.elapsed() < max {
            let cpu0 = self.cpu_seconds();
            std::thread::sleep(Duration::from_secs(1));
            if self.cpu_seconds() - cpu0 < 0.05 {
                break;
            }
        }
        start.elapsed().as_secs_f64()
    }

    /// (VmRSS, VmHWM) in MiB.
    pub(crate) fn memory_mib(&self) -> (f64, f64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        let field = |name: &str| {
            BufReader::new(status.as_bytes())
                .lines()
                .map_while(Result::ok)
                .find(|l| l.starts_with(name))
                .and_then(|l| {
                    l.split_whitespace()
                        .nth(1)
                        .and_then(|v| v.parse::<f64>().ok())
                })
                .unwrap_or(0.0)
                / 1024.0
        };
        (field("VmRSS:"), field("VmHWM:"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) struct Api {
    pub(crate) url: String,
    pub(crate) agent: ureq::Agent,
    pub(crate) bearer: String,
}

impl Api {
    pub(crate) fn login(server: &Server) -> Api {
        let agent = ureq::Agent::new_with_defaults();
        let url = server.url.clone();
        agent
            .post(&format!("{url}/api/auth/register"))
            .send_json(json!({ "username": "bench", "password": PASSWORD }))
            .expect("register");
        let mut r = agent
            .post(&format!("{url}/api/auth/token"))
            .send_json(json!({ "username": "bench", "password": PASSWORD }))
            .expect("login");
        let body: Value = r.body_mut().read_json().expect("login body");
        let bearer = format!(
            "Bearer {}",
            body["access_token"].as_str().expect("access token")
        );
        Api { url, agent, bearer }
    }

    /// Creates `n` agents and activates each with a first report (4 client
    /// threads); returns (id, token) in creation order.
    pub(crate) fn agents(&self, n: usize) -> Vec<(u64, String)> {
        self.agents_since(n, 0)
    }

    /// [`Api::agents`] with the first report `back_ms` in the past.
    pub(crate) fn agents_since(&self, n: usize, back_ms: i64) -> Vec<(u64, String)> {
        let threads = 4.min(n.max(1));
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (agent, url, bearer) =
                    (self.agent.clone(), self.url.clone(), self.bearer.clone());
                std::thread::spawn(move || {
                    (t..n)
                        .step_by(threads)
                        .map(|i| {
                            let mut r = agent
                                .post(&format!("{url}/api/agents"))
                                .header("authorization", &bearer)
                                .send_json(json!({ "name": format!("bench-{i}") }))
                                .expect("create agent");
                            let body: Value = r.body_mut().read_json().expect("agent body");
                            let id = body["agent"]["id"].as_u64().expect("id");
                            let token = body["token"].as_str().expect("token").to_string();
                            let first = report(now_ms() - back_ms, id);
                            send(&agent, &url, &token, &batch(&[first]));
                            (id, token)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut all: Vec<(u64, String)> = handles
            .into_iter()
            .flat_map(|h| h.join().expect("agent creation thread"))
            .collect();
        all.sort_by_key(|(id, _)| *id);
        all
    }

    /// One GET, client-side time in ms; `accept` sets Accept-Encoding
    /// (otherwise ureq's own: gzip, which it decodes).
    pub(crate) fn get_ms(&self, path: &str, accept: Option<&str>) -> f64 {
        let t = Instant::now();
        let mut req = self
            .agent
            .get(&format!("{}{path}", self.url))
            .header("authorization", &self.bearer);
        if let Some(accept) = accept {
            req = req.header("accept-encoding", accept);
        }
        let mut r = req.call().expect("history");
        let _ = r.body_mut().read_to_vec().expect("body");
        t.elapsed().as_secs_f64() * 1e3
    }
}
