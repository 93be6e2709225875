//! A fake Docker engine on a Unix socket: answers `GET /containers/json`,
//! `/containers/{id}/json` and `/containers/{id}/stats` with bodies shaped
//! exactly like the Docker Engine API's documented schemas
//! (ContainerSummary, ContainerInspectResponse, ContainerStatsResponse on
//! cgroup v2), stats chunked as Go's HTTP server sends them. For what the
//! real engine test (`engine.rs`) cannot do: a slow or broken daemon.

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Clone)]
pub struct FakeContainer {
    pub id: String,
    pub name: String,
    pub state: String,
    pub status: String,
    pub restarts: u32,
    pub cpu_ns: u64,
    pub rx: u64,
    pub read: u64,
}

#[derive(Default)]
pub struct Engine {
    pub containers: Vec<FakeContainer>,
    /// Stats of this id are answered only after this long.
    pub slow: Option<(String, Duration)>,
    /// Every answer is this text instead of HTTP.
    pub garbage: bool,
    pub requests: Vec<String>,
    /// Connections accepted.
    pub connections: usize,
    /// Each connection is closed after this many answers (an engine's
    /// idle timeout, seen from the client).
    pub answers_per_connection: Option<usize>,
    /// Answer as Podman does: a `Libpod-Api-Version` header on every
    /// answer, and its all-containers stats call.
    pub podman: bool,
    /// Podman's all-containers stats call answers with its `Error`.
    pub podman_stats_fail: bool,
    /// Ids left out of Podman's all-containers stats (started since).
    pub podman_stats_skip: Vec<String>,
}

pub struct FakeEngine {
    pub socket: PathBuf,
    pub engine: Arc<Mutex<Engine>>,
    _dir: tempfile::TempDir,
}

impl FakeEngine {
    pub fn start(containers: Vec<FakeContainer>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("docker.sock");
        let listener = UnixListener::bind(&socket).unwrap();
        let engine = Arc::new(Mutex::new(Engine {
            containers,
            ..Engine::default()
        }));
        let shared = engine.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { return };
                let shared = shared.clone();
                std::thread::spawn(move || serve(conn, &shared));
            }
        });
        FakeEngine {
            socket,
            engine,
            _dir: dir,
        }
    }

    pub fn with<R>(&self, f: impl FnOnce(&mut Engine) -> R) -> R {
        f(&mut self.engine.lock().unwrap())
    }
}

pub fn container(id: &str, name: &str) -> FakeContainer {
    FakeContainer {
        id: format!("{id:0<64}"),
        name: name.into(),
        state: "running".into(),
        status: "Up 2 hours".into(),
        restarts: 0,
        cpu_ns: 1_000_000_000,
        rx: 10_000,
        read: 0,
    }
}

/// Answers requests on `conn` one after the other (HTTP/1.1 keep-alive, as
/// Go's server does) until the client closes it or asks `Connection: close`.
fn serve(mut conn: UnixStream, engine: &Mutex<Engine>) {
    let limit = {
        let mut e = engine.lock().unwrap();
        e.connections += 1;
        e.answers_per_connection.unwrap_or(usize::MAX)
    };
    for _ in 0..limit {
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") && head.len() < 8192 {
            match conn.read(&mut byte) {
                Ok(1) => head.push(byte[0]),
                _ => return,
            }
        }
        let head = String::from_utf8_lossy(&head).into_owned();
        let path = head.split(' ').nth(1).unwrap_or_default().to_owned();
        let (answer, delay) = {
            let mut e = engine.lock().unwrap();
            e.requests.push(path.clone());
            if e.garbage {
                let _ = conn.write_all(b"this is not HTTP at all\r\n\r\n{");
                return;
            }
            let delay = e
                .slow
                .as_ref()
                .filter(|(id, _)| path.contains(id.as_str()) && path.contains("/stats"))
                .map(|(_, d)| *d);
            let mut answer = route(&path, &e);
            if e.podman {
                answer = podman_head(answer);
            }
            (answer, delay)
        };
        if let Some(d) = delay {
            std::thread::sleep(d);
        }
        if conn.write_all(&answer).is_err()
            || head.to_ascii_lowercase().contains("connection: close")
        {
            return;
        }
    }
}

/// Podman's header after the status line.
fn podman_head(answer: Vec<u8>) -> Vec<u8> {
    let at = answer.windows(2).position(|w| w == b"\r\n").unwrap() + 2;
    let mut out = answer[..at].to_vec();
    out.extend_from_slice(b"Libpod-Api-Version: 4.3.1\r\n");
    out.extend_from_slice(&answer[at..]);
    out
}

fn route(path: &str, e: &Engine) -> Vec<u8> {
    if path.starts_with("/v4.0.0/libpod/containers/stats") {
        if !e.podman {
            return by_length(404, r#"{"message":"page not found"}"#);
        }
        if e.podman_stats_fail {
            return chunked(r#"{"Error":{"Err":"container state improper"},"Stats":null}"#);
        }
        let stats: Vec<String> = e
            .containers
            .iter()
            .filter(|c| c.state == "running" && !e.podman_stats_skip.contains(&c.id))
            .map(podman_stat)
            .collect();
        return chunked(&format!(
            r#"{{"Error":null,"Stats":[{}]}}"#,
            stats.join(",")
        ));
    }
    if path.starts_with("/containers/json") {
        let list: Vec<String> = e.containers.iter().map(summary).collect();
        return by_length(200, &format!("[{}]", list.join(",")));
    }
    let Some(rest) = path.strip_prefix("/containers/") else {
        return by_length(404, r#"{"message":"page not found"}"#);
    };
    let (id, what) = rest.split_once('/').unwrap_or((rest, ""));
    let Some(c) = e.containers.iter().find(|c| c.id == id) else {
        return by_length(404, &format!(r#"{{"message":"No such container: {id}"}}"#));
    };
    if what == "json" {
        by_length(200, &inspect(c))
    } else if what.starts_with("stats") {
        chunked(&stats(c))
    } else {
        by_length(404, r#"{"message":"page not found"}"#)
    }
}

fn by_length(status: u16, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status} X\r\nApi-Version: 1.47\r\nContent-Type: application/json\r\n\
         Docker-Experimental: false\r\nServer: Docker/27.3.1 (linux)\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn chunked(body: &str) -> Vec<u8> {
    let mut out = b"HTTP/1.1 200 OK\r\nApi-Version: 1.47\r\nContent-Type: application/json\r\nServer: Docker/27.3.1 (linux)\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for part in body.as_bytes().chunks(700) {
        out.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
        out.extend_from_slice(part);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

/// ContainerSummary, as in the API reference's example.
fn summary(c: &FakeContainer) -> String {
    format!(
        r#"{{"Id":"{id}","Names":["/{name}"],"Image":"nginx:1.27","ImageID":"sha256:ec0e5f1f0fbbd36ddcafb4d8e2c2d0f0f3c0a7a7c63b43c8e1e0f0f9a9fa9b7e",
        "Command":"nginx -g 'daemon off;'","Created":1739811096,"Ports":[{{"PrivatePort":80,"PublicPort":8080,"Type":"tcp"}}],
        "Labels":{{"com.docker.compose.project":"site"}},"State":"{state}","Status":"{status}",
        "HostConfig":{{"NetworkMode":"default"}},"NetworkSettings":{{"Networks":{{"bridge":{{"NetworkID":"7ea29fc1412292a2d7bba362f9253545fecdfa8ce9a6e37dd10ba8bee7129812","IPAddress":"172.17.0.2"}}}}}},
        "Mounts":[]}}"#,
        id = c.id,
        name = c.name,
        state = c.state,
        status = c.status
    )
}

/// ContainerInspectResponse, the fields around `RestartCount`.
fn inspect(c: &FakeContainer) -> String {
    format!(
        r#"{{"Id":"{id}","Created":"2025-02-17T17:43:39.64001363Z","Path":"nginx","Args":["-g","daemon off;"],
        "State":{{"Status":"{state}","Running":{running},"Paused":false,"Restarting":false,"OOMKilled":false,"Dead":false,
                 "Pid":1234,"ExitCode":0,"Error":"","StartedAt":"2025-02-17T17:43:39.64001363Z","FinishedAt":"0001-01-01T00:00:00Z"}},
        "Image":"sha256:ec0e5f1f0fbbd36ddcafb4d8e2c2d0f0f3c0a7a7c63b43c8e1e0f0f9a9fa9b7e","Name":"/{name}",
        "RestartCount":{restarts},"Driver":"overlay2","Platform":"linux","HostConfig":{{"RestartPolicy":{{"Name":"always","MaximumRetryCount":0}}}}}}"#,
        id = c.id,
        name = c.name,
        state = c.state,
        running = c.state == "running",
        restarts = c.restarts
    )
}

/// ContainerStatsResponse on cgroup v2 with `one-shot=true` (empty precpu).
fn stats(c: &FakeContainer) -> String {
    format!(
        r#"{{"id":"{id}","name":"/{name}","read":"2025-01-16T13:55:22.165243637Z","preread":"0001-01-01T00:00:00Z",
        "pids_stats":{{"current":5,"limit":18446744073709551615}},
        "blkio_stats":{{"io_service_bytes_recursive":[{{"major":254,"minor":0,"op":"read","value":{read}}},{{"major":254,"minor":0,"op":"write","value":0}}],
                        "io_serviced_recursive":null,"io_queue_recursive":null,"io_service_time_recursive":null,"io_wait_time_recursive":null,
                        "io_merged_recursive":null,"io_time_recursive":null,"sectors_recursive":null}},
        "num_procs":0,"storage_stats":{{}},
        "cpu_stats":{{"cpu_usage":{{"total_usage":{cpu},"usage_in_kernelmode":0,"usage_in_usermode":0}},"system_cpu_usage":5,"online_cpus":2,
                     "throttling_data":{{"periods":0,"throttled_periods":0,"throttled_time":0}}}},
        "precpu_stats":{{"cpu_usage":{{"total_usage":0,"usage_in_kernelmode":0,"usage_in_usermode":0}},"throttling_data":{{"periods":0,"throttled_periods":0,"throttled_time":0}}}},
        "memory_stats":{{"usage":6537216,"stats":{{"active_anon":98304,"anon":5000000,"file":1000000,"inactive_file":1000000,"active_file":0}},"limit":67108864}},
        "networks":{{"eth0":{{"rx_bytes":{rx},"rx_packets":36,"rx_errors":0,"rx_dropped":0,"tx_bytes":648,"tx_packets":8,"tx_errors":0,"tx_dropped":0}}}}}}"#,
        id = c.id,
        name = c.name,
        cpu = c.cpu_ns,
        rx = c.rx,
        read = c.read
    )
}

/// One entry of Podman's `GET /libpod/containers/stats?stream=false`
/// (`ContainerStats`), as Podman 4.3 answers it; memory as its compatible
/// stats call gives it on cgroup v2 with the inactive file pages left out.
fn podman_stat(c: &FakeContainer) -> String {
    format!(
        r#"{{"AvgCPU":0.03,"ContainerID":"{id}","Name":"{name}","PerCPU":[1,2],"CPU":0.03,
        "CPUNano":{cpu},"CPUSystemNano":12000000,"SystemNano":1796596519944722088,
        "MemUsage":5537216,"MemLimit":67108864,"MemPerc":8.25,"NetInput":{rx},"NetOutput":648,
        "BlockInput":{read},"BlockOutput":0,"PIDs":5,"UpTime":25043617,"Duration":25043617}}"#,
        id = c.id,
        name = c.name,
        cpu = c.cpu_ns,
        rx = c.rx,
        read = c.read
    )
}
