//! A local OCI registry for tests (`docker-registry serve` on 127.0.0.1 with
//! storage in a temp dir, stopped by PID on drop) and a tiny busybox image
//! built by hand as an OCI archive, pushed with skopeo.
//!
//! The image: one gzip layer holding `/bin/busybox` (busybox-static) with
//! applet symlinks, `/etc/passwd` and `/etc/group` (root, nobody, and
//! `orca:1234:1234`), `/tmp`; config `Cmd ["sh"]` and a PATH. Every header
//! time is 0, so the archive (and its digests) is identical on every build.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use sha2::{Digest, Sha256};

use crate::containerd::{in_ci, missing};

/// The ref name the archive carries (`org.opencontainers.image.ref.name`).
pub const ARCHIVE_REF: &str = "orca-busybox:1";

/// busybox applets linked into the image's /bin.
const APPLETS: &[&str] = &[
    "sh",
    "sleep",
    "httpd",
    "nc",
    "wget",
    "echo",
    "cat",
    "true",
    "false",
    "dd",
    "head",
    "tail",
    "ls",
    "env",
    "id",
    "hostname",
    "ip",
    "ifconfig",
    "ping",
    "yes",
    "tr",
    "pwd",
    "whoami",
    "kill",
    "ps",
    "mkdir",
    "rm",
    "cp",
    "mv",
    "grep",
    "sed",
    "awk",
    "wc",
    "date",
    "test",
    "[",
    "printf",
    "seq",
    "timeout",
    "nslookup",
    "touch",
    "chmod",
    "uname",
    "cut",
    "sort",
    "tee",
    "xargs",
    "stat",
    "free",
    "md5sum",
    "sha256sum",
    "base64",
    "ulimit",
    "usleep",
    "mount",
    "cmp",
];

/// Whether busybox-static, docker-registry and skopeo are installed: an
/// error under CI when one is missing, else `Ok(false)` with the reason.
pub fn tools_available() -> anyhow::Result<bool> {
    for (tool, package) in [
        ("/bin/busybox", "busybox-static"),
        ("/usr/bin/docker-registry", "docker-registry"),
        ("/usr/bin/skopeo", "skopeo"),
    ] {
        if !Path::new(tool).exists() {
            return missing::<()>(&format!(
                "{tool} is missing (install {package}; deploy/install-deps.sh does)"
            ))
            .map(|_| false);
        }
    }
    Ok(true)
}

/// A running `docker-registry`, stopped when dropped.
pub struct TestRegistry {
    child: Option<Child>,
    /// `127.0.0.1:PORT`.
    addr: SocketAddr,
    /// Config and storage; removed on drop.
    _dir: tempfile::TempDir,
}

impl TestRegistry {
    /// Starts a registry on a free loopback port and waits until it answers.
    pub fn start() -> anyhow::Result<TestRegistry> {
        let dir = tempfile::tempdir().context("registry temp dir")?;
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
        let config = dir.path().join("config.yml");
        std::fs::create_dir_all(dir.path().join("storage"))?;
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n",
                dir.path().join("storage").display()
            ),
        )?;
        let log = std::fs::File::create(dir.path().join("registry.log"))?;
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("start docker-registry")?;
        let mut registry = TestRegistry {
            child: Some(child),
            addr,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        while !registry.answers() {
            if let Some(child) = registry.child.as_mut() {
                if let Some(status) = child.try_wait()? {
                    let log = std::fs::read_to_string(registry._dir.path().join("registry.log"))
                        .unwrap_or_default();
                    bail!("docker-registry exited with {status}: {log}");
                }
            }
            if Instant::now() > deadline {
                bail!("docker-registry did not answer on {addr} within 15s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(registry)
    }

    /// `127.0.0.1:PORT`, as image references name it.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// Whether `GET /v2/` answers 200.
    fn answers(&self) -> bool {
        let Ok(mut s) = TcpStream::connect_timeout(&self.addr, Duration::from_millis(500)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        if s.write_all(b"GET /v2/ HTTP/1.0\r\nHost: localhost\r\n\r\n")
            .is_err()
        {
            return false;
        }
        let mut buf = [0u8; 16];
        let n = s.read(&mut buf).unwrap_or(0);
        buf[..n].starts_with(b"HTTP/1.1 200") || buf[..n].starts_with(b"HTTP/1.0 200")
    }

    /// Pushes the archive's image as `name_tag` (e.g. `busybox:1`); returns
    /// the reference to pull it by (`127.0.0.1:PORT/busybox:1`).
    pub fn push(&self, archive: &Path, name_tag: &str) -> anyhow::Result<String> {
        let reference = format!("{}/{name_tag}", self.host());
        let out = Command::new("skopeo")
            .args([
                "copy",
                "--insecure-policy",
                "--dest-tls-verify=false",
                "--quiet",
            ])
            .arg(format!("oci-archive:{}:{ARCHIVE_REF}", archive.display()))
            .arg(format!("docker://{reference}"))
            .output()
            .context("run skopeo")?;
        if !out.status.success() {
            bail!(
                "skopeo copy to {reference} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(reference)
    }

    /// Stops the registry now (its storage stays until drop).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Our own child, by PID.
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        self.stop();
    }
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn header(path: &str, size: u64, mode: u32, kind: tar::EntryType) -> anyhow::Result<tar::Header> {
    let mut h = tar::Header::new_gnu();
    h.set_path(path)?;
    h.set_size(size);
    h.set_mode(mode);
    h.set_entry_type(kind);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    Ok(h)
}

fn add_file<W: Write>(
    b: &mut tar::Builder<W>,
    path: &str,
    mode: u32,
    data: &[u8],
) -> anyhow::Result<()> {
    let mut h = header(path, data.len() as u64, mode, tar::EntryType::Regular)?;
    h.set_cksum();
    b.append(&h, data)?;
    Ok(())
}

fn add_dir<W: Write>(b: &mut tar::Builder<W>, path: &str, mode: u32) -> anyhow::Result<()> {
    let mut h = header(path, 0, mode, tar::EntryType::Directory)?;
    h.set_cksum();
    b.append(&h, std::io::empty())?;
    Ok(())
}

/// The uncompressed rootfs layer.
fn rootfs_layer() -> anyhow::Result<Vec<u8>> {
    let busybox = std::fs::read("/bin/busybox").context("read /bin/busybox (busybox-static)")?;
    let mut b = tar::Builder::new(Vec::new());
    for (dir, mode) in [
        ("bin/", 0o755),
        ("etc/", 0o755),
        ("tmp/", 0o1777),
        ("proc/", 0o555),
        ("sys/", 0o555),
        ("dev/", 0o755),
        ("root/", 0o700),
        ("home/", 0o755),
        ("home/orca/", 0o755),
    ] {
        add_dir(&mut b, dir, mode)?;
    }
    add_file(&mut b, "bin/busybox", 0o755, &busybox)?;
    for applet in APPLETS {
        let mut h = header(&format!("bin/{applet}"), 0, 0o777, tar::EntryType::Symlink)?;
        h.set_link_name("busybox")?;
        h.set_cksum();
        b.append(&h, std::io::empty())?;
    }
    add_file(
        &mut b,
        "etc/passwd",
        0o644,
        b"root:x:0:0:root:/root:/bin/sh\norca:x:1234:1234:orca:/home/orca:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )?;
    add_file(
        &mut b,
        "etc/group",
        0o644,
        b"root:x:0:\norca:x:1234:\nwheel:x:10:orca\nnogroup:x:65534:\n",
    )?;
    Ok(b.into_inner()?)
}

/// Builds the busybox OCI archive in `dir`; returns its path.
pub fn build_busybox_oci_archive(dir: &Path) -> anyhow::Result<PathBuf> {
    if !Path::new("/bin/busybox").exists() && in_ci() {
        bail!("/bin/busybox is missing: install busybox-static");
    }
    let layer = rootfs_layer()?;
    let diff_id = format!("sha256:{}", sha256_hex(&layer));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&layer)?;
    let layer_gz = gz.finish()?;
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": arch,
        "os": "linux",
        "config": {
            "Cmd": ["sh"],
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
        },
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    }))?;
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": format!("sha256:{}", sha256_hex(&config)),
            "size": config.len(),
        },
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": format!("sha256:{}", sha256_hex(&layer_gz)),
            "size": layer_gz.len(),
        }],
    }))?;
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": format!("sha256:{}", sha256_hex(&manifest)),
            "size": manifest.len(),
            "annotations": {"org.opencontainers.image.ref.name": ARCHIVE_REF},
        }],
    }))?;
    let path = dir.join("busybox-oci.tar");
    let mut b = tar::Builder::new(std::fs::File::create(&path)?);
    add_file(
        &mut b,
        "oci-layout",
        0o644,
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )?;
    add_file(&mut b, "index.json", 0o644, &index)?;
    add_dir(&mut b, "blobs/", 0o755)?;
    add_dir(&mut b, "blobs/sha256/", 0o755)?;
    for blob in [&layer_gz, &config, &manifest] {
        add_file(
            &mut b,
            &format!("blobs/sha256/{}", sha256_hex(blob)),
            0o644,
            blob,
        )?;
    }
    b.into_inner()?.sync_all()?;
    Ok(path)
}
