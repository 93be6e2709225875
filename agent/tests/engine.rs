//! Against a real container engine: Podman's Docker-compatible API on a
//! socket of this test, a container of a locally built busybox image (no
//! registry; `make setup-engine` imports it, or this test does from
//! /bin/busybox). Skipped, saying why, only when the engine cannot start a
//! container on this machine.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use agent::collect::ContainerConfig;
use agent::collect::containers::ContainerCollector;

pub const IMAGE: &str = "localhost/statusmonitor-busybox:latest";

/// `podman system service` on a socket of its own; stopped when dropped.
pub struct Podman {
    pub socket: PathBuf,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn podman(args: &[&str]) -> Result<String, String> {
    let out = Command::new("podman")
        .args(args)
        .output()
        .map_err(|e| format!("podman: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
    }
}

/// The busybox image, imported from a tarball of /bin/busybox if missing.
fn ensure_image() -> Result<(), String> {
    if podman(&["image", "exists", IMAGE]).is_ok() {
        return Ok(());
    }
    let busybox = Path::new("/bin/busybox");
    if !busybox.exists() {
        return Err(
            "no /bin/busybox to build the image from (apt-get install busybox-static)".into(),
        );
    }
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let root = dir.path().join("root/bin");
    std::fs::create_dir_all(&root).map_err(|e| e.to_string())?;
    std::fs::copy(busybox, root.join("busybox")).map_err(|e| e.to_string())?;
    for tool in ["sh", "sleep", "true"] {
        std::os::unix::fs::symlink("busybox", root.join(tool)).map_err(|e| e.to_string())?;
    }
    let tar = dir.path().join("rootfs.tar");
    let status = Command::new("tar")
        .arg("-C")
        .arg(dir.path().join("root"))
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .map_err(|e| e.to_string())?;
    if !status.success() {
        return Err("tar failed".into());
    }
    podman(&["import", &tar.to_string_lossy(), IMAGE]).map(|_| ())
}

/// Runs `cmd` in a new container named `name`, detached. Inside another
/// container (no CAP_SYS_RESOURCE, cgroups v1/v2 hybrid) crun refuses the
/// default limits and cgroup layout, so runc with the current limits is
/// tried next.
pub fn run_container(name: &str, cmd: &[&str]) -> Result<String, String> {
    let mut plain = vec!["run", "-d", "--name", name, IMAGE];
    plain.extend_from_slice(cmd);
    let first = podman(&plain);
    if first.is_ok() {
        return first;
    }
    let _ = podman(&["rm", "-f", name]);
    let mut nested = vec![
        "--runtime",
        "runc",
        "run",
        "-d",
        "--ulimit",
        "nofile=1024:1024",
        "--ulimit",
        "nproc=4096:4096",
        "--name",
        name,
        IMAGE,
    ];
    nested.extend_from_slice(cmd);
    podman(&nested).map_err(|e| format!("{}; then with runc: {e}", first.unwrap_err()))
}

pub fn remove(name: &str) {
    let _ = podman(&["rm", "-f", "-t", "0", name]);
}

pub fn stop(name: &str) -> Result<String, String> {
    podman(&["stop", "-t", "0", name])
}

/// The engine with its API on a fresh socket, or why it cannot run here.
pub fn start() -> Result<Podman, String> {
    podman(&["--version"])
        .map_err(|e| format!("podman is not installed ({e}): make setup-engine"))?;
    ensure_image()?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let socket = dir.path().join("podman.sock");
    let child = Command::new("podman")
        .args(["system", "service", "--time=0"])
        .arg(format!("unix://{}", socket.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    let engine = Podman {
        socket,
        child,
        _dir: dir,
    };
    let until = Instant::now() + Duration::from_secs(10);
    while !engine.socket.exists() {
        if Instant::now() > until {
            return Err("podman system service made no socket in 10 s".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(engine)
}

/// Collects until `done` holds for the list (bounded: 10 s).
pub fn collect_until(
    c: &mut ContainerCollector,
    done: impl Fn(&[storage::model::Container]) -> bool,
) -> Vec<storage::model::Container> {
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let list = c.collect().unwrap_or_default();
        if done(&list) || Instant::now() > until {
            return list;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn a_real_engines_container_is_reported_running_then_stopped() {
    let engine = match start() {
        Ok(e) => e,
        Err(why) => {
            eprintln!("SKIPPED: no container engine can run here: {why}");
            return;
        }
    };
    let name = format!("sm-engine-test-{}", std::process::id());
    remove(&name);
    if let Err(why) = run_container(&name, &["/bin/sleep", "300"]) {
        remove(&name);
        eprintln!("SKIPPED: the engine cannot start a container here: {why}");
        return;
    }
    let mut c = ContainerCollector::new(
        &ContainerConfig {
            disabled: false,
            socket: Some(engine.socket.clone()),
        },
        Duration::from_secs(5),
    )
    .expect("containers on");
    let find = |list: &[storage::model::Container]| list.iter().find(|c| c.name == name).cloned();
    let list = collect_until(&mut c, |l| {
        find(l).is_some_and(|c| c.cpu_pct.is_some() && c.mem_used_bytes.is_some())
    });
    let running = find(&list);
    stop(&name).expect("podman stop");
    let stopped = collect_until(&mut c, |l| find(l).is_some_and(|c| !c.is_running()));
    remove(&name);
    let running = running.expect("the container is listed");
    assert_eq!(running.state, "running");
    assert_eq!(running.image, IMAGE);
    assert_eq!(running.restarts, Some(0));
    assert_eq!(running.id.len(), 64);
    assert!(running.cpu_pct.is_some_and(|p| (0.0..=200.0).contains(&p)));
    assert!(running.mem_used_bytes.is_some_and(|m| m > 0));
    let stopped = find(&stopped).expect("still listed once stopped");
    assert_eq!(stopped.state, "exited");
    assert_eq!(stopped.cpu_pct, None);
}
