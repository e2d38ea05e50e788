use std::fs;
use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The unprivileged login user the harness creates (once) for its sshd.
pub const TEST_USER: &str = "jobtest";
/// That user's password, for password-authentication tests.
pub const TEST_PASSWORD: &str = "jobtest-Passw0rd";

const SSHD: &str = "/usr/sbin/sshd";

/// Client key pairs accepted by the harness sshd (private keys in OpenSSH format).
#[derive(Debug, Clone)]
pub struct SshdKeys {
    /// An ed25519 private key.
    pub ed25519: String,
    /// An RSA (3072-bit) private key.
    pub rsa: String,
    /// An ECDSA (P-256) private key.
    pub ecdsa: String,
    /// A key that is *not* in authorized_keys.
    pub stranger: String,
}

/// A running OpenSSH sshd on 127.0.0.1, killed when dropped.
#[derive(Debug)]
pub struct Sshd {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
    keys: SshdKeys,
    host_public_key: String,
}

fn run(cmd: &mut Command) -> Result<String, String> {
    let out = cmd
        .output()
        .map_err(|e| format!("{:?}: {e}", cmd.get_program()))?;
    if !out.status.success() {
        return Err(format!(
            "{:?} failed: {}",
            cmd.get_program(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn keygen(dir: &Path, name: &str, kind: &[&str]) -> Result<(String, String), String> {
    let path = dir.join(name);
    let _ = fs::remove_file(&path);
    let _ = fs::remove_file(path.with_extension("pub"));
    run(Command::new("ssh-keygen")
        .args(kind)
        .args(["-q", "-N", "", "-C", name, "-f"])
        .arg(&path))?;
    let private = fs::read_to_string(&path).map_err(|e| e.to_string())?;
    let public = fs::read_to_string(dir.join(format!("{name}.pub"))).map_err(|e| e.to_string())?;
    Ok((private, public))
}

/// Creates the test user if it does not exist, with `/bin/sh` as its login shell, a clean
/// home it owns and the known password. Serialized within the process (a mutex) and across
/// test processes (a lock file), since test threads and binaries start harnesses at once.
fn ensure_user() -> Result<(), String> {
    static LOCAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _local = LOCAL.lock().unwrap_or_else(|p| p.into_inner());
    let lock = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open("/tmp/job-testsupport-user.lock")
        .map_err(|e| format!("user lock: {e}"))?;
    lock.lock().map_err(|e| format!("user lock: {e}"))?;
    let exists = |_: ()| {
        Command::new("id")
            .arg(TEST_USER)
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !exists(()) {
        run(Command::new("useradd").args(["--create-home", "--shell", "/bin/sh", TEST_USER]))?;
    }
    let home = format!("/home/{TEST_USER}");
    fs::create_dir_all(&home).map_err(|e| format!("{home}: {e}"))?;
    run(Command::new("chown").args(["-R", &format!("{TEST_USER}:{TEST_USER}"), &home]))?;
    let mut child = Command::new("chpasswd")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| format!("chpasswd: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        writeln!(stdin, "{TEST_USER}:{TEST_PASSWORD}").map_err(|e| e.to_string())?;
    }
    let st = child.wait().map_err(|e| e.to_string())?;
    if !st.success() {
        return Err("chpasswd failed".into());
    }
    Ok(())
}

impl Sshd {
    /// Why the harness cannot run here, if it cannot (no sshd binary, not root).
    pub fn unavailable() -> Result<(), String> {
        if !Path::new(SSHD).exists() {
            return Err(format!(
                "{SSHD} is not installed (apt-get install openssh-server)"
            ));
        }
        let uid = run(Command::new("id").arg("-u"))?;
        if uid.trim() != "0" {
            return Err("the sshd harness needs root to create its test user".into());
        }
        Ok(())
    }

    /// Starts a new sshd on a free loopback port. `extra_config` lines are appended to its
    /// sshd_config.
    pub fn start_with(extra_config: &str) -> Result<Self, String> {
        Self::start_listening("127.0.0.1", extra_config)
    }

    /// Starts a new sshd reachable on every loopback address (127.0.0.0/8), so a test or
    /// benchmark can address many distinct "hosts" (127.0.x.y) that are all this sshd. It
    /// binds the wildcard address but lets the test user in only from loopback.
    pub fn start_on_all_loopback_addresses(extra_config: &str) -> Result<Self, String> {
        Self::start_listening(
            "0.0.0.0",
            &format!("AllowUsers {TEST_USER}@127.0.0.0/8\n{extra_config}"),
        )
    }

    fn start_listening(listen: &str, extra_config: &str) -> Result<Self, String> {
        Self::unavailable()?;
        ensure_user()?;
        fs::create_dir_all("/run/sshd").map_err(|e| format!("/run/sshd: {e}"))?;
        let dir = tempfile::Builder::new()
            .prefix("job-sshd-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let d = dir.path();
        let (_, host_pub) = keygen(d, "host_ed25519", &["-t", "ed25519"])?;
        let (ed25519, ed_pub) = keygen(d, "id_ed25519", &["-t", "ed25519"])?;
        let (rsa, rsa_pub) = keygen(d, "id_rsa", &["-t", "rsa", "-b", "3072"])?;
        let (ecdsa, ec_pub) = keygen(d, "id_ecdsa", &["-t", "ecdsa", "-b", "256"])?;
        let (stranger, _) = keygen(d, "id_stranger", &["-t", "ed25519"])?;
        let authorized = d.join("authorized_keys");
        fs::write(&authorized, format!("{ed_pub}{rsa_pub}{ec_pub}")).map_err(|e| e.to_string())?;
        let port = crate::free_port().map_err(|e| e.to_string())?;
        let config = d.join("sshd_config");
        fs::write(
            &config,
            format!(
                "Port {port}\n\
                 ListenAddress {listen}\n\
                 HostKey {host}\n\
                 PidFile {pid}\n\
                 AuthorizedKeysFile {authorized}\n\
                 StrictModes no\n\
                 UsePAM no\n\
                 PasswordAuthentication yes\n\
                 KbdInteractiveAuthentication no\n\
                 PermitRootLogin no\n\
                 {allow}\n\
                 MaxStartups 2000:30:4000\n\
                 MaxSessions 1000\n\
                 MaxAuthTries 10\n\
                 LoginGraceTime 30\n\
                 PrintMotd no\n\
                 PrintLastLog no\n\
                 UseDNS no\n\
                 LogLevel ERROR\n\
                 Subsystem sftp internal-sftp\n\
                 {extra_config}\n",
                host = d.join("host_ed25519").display(),
                pid = d.join("sshd.pid").display(),
                allow = if extra_config.contains("AllowUsers") {
                    String::new()
                } else {
                    format!("AllowUsers {TEST_USER}")
                },
                authorized = authorized.display(),
            ),
        )
        .map_err(|e| e.to_string())?;
        let log = fs::File::create(d.join("sshd.log")).map_err(|e| e.to_string())?;
        let child = Command::new(SSHD)
            .arg("-D")
            .arg("-e")
            .arg("-f")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("{SSHD}: {e}"))?;
        let mut sshd = Self {
            child,
            port,
            dir,
            keys: SshdKeys {
                ed25519,
                rsa,
                ecdsa,
                stranger,
            },
            host_public_key: host_pub.trim().to_owned(),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(st)) = sshd.child.try_wait() {
                return Err(format!("sshd exited at start with {st}"));
            }
            if Instant::now() > deadline {
                return Err(format!("sshd did not listen on port {port} within 10 s"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(sshd)
    }

    /// Starts a new sshd with the default configuration.
    pub fn start() -> Result<Self, String> {
        Self::start_with("")
    }

    /// The port it listens on (on 127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Client keys.
    pub fn keys(&self) -> &SshdKeys {
        &self.keys
    }

    /// The server's host public key, OpenSSH format (`ssh-ed25519 AAAA… host_ed25519`).
    pub fn host_public_key(&self) -> &str {
        &self.host_public_key
    }

    /// A known_hosts file that trusts this server's host key at 127.0.0.1 on its port.
    pub fn known_hosts_file(&self) -> Result<PathBuf, String> {
        let path = self.dir.path().join("known_hosts");
        let mut parts = self.host_public_key.split_whitespace();
        let (alg, key) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        fs::write(&path, format!("[127.0.0.1]:{} {alg} {key}\n", self.port))
            .map_err(|e| e.to_string())?;
        Ok(path)
    }

    /// What sshd logged so far (errors only).
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }

    /// The harness's private directory (for files a test wants to keep next to it).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
