//! `jobd` as a command line: help, version, config errors, `migrate`, `token create`
//! refusals, `agent` without NATS. Runs the real binary.

mod common;

use common::{jobd, run, text};

#[test]
fn every_command_answers_help() {
    let (_dir, data) = common::data_dir();
    for args in [
        &["--help"][..],
        &["serve", "--help"],
        &["migrate", "--help"],
        &["token", "--help"],
        &["token", "create", "--help"],
        &["agent", "--help"],
        &["help", "serve"],
    ] {
        let mut cmd = jobd(&data);
        cmd.args(args);
        let out = run(cmd);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        let help = text(&out.stdout);
        assert!(help.contains("Usage: jobd"), "{args:?}: {help}");
    }
    let mut cmd = jobd(&data);
    cmd.args(["token", "create", "--help"]);
    let help = text(&run(cmd).stdout);
    for flag in ["--user", "--team", "--name", "--expires-days", "--config"] {
        assert!(help.contains(flag), "{flag} missing from: {help}");
    }
    // Help creates nothing.
    assert!(!data.exists());
}

#[test]
fn version_names_the_binary_and_its_version() {
    let (_dir, data) = common::data_dir();
    let mut cmd = jobd(&data);
    cmd.arg("--version");
    let out = run(cmd);
    assert!(out.status.success());
    assert_eq!(
        text(&out.stdout).trim(),
        format!("jobd {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn an_unknown_command_is_a_usage_error() {
    let (_dir, data) = common::data_dir();
    let mut cmd = jobd(&data);
    cmd.arg("frobnicate");
    let out = run(cmd);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("frobnicate"));
}

#[test]
fn the_agent_without_a_nats_url_is_a_usage_error_naming_the_knob() {
    let (_dir, data) = common::data_dir();
    let mut cmd = jobd(&data);
    cmd.arg("agent");
    let out = run(cmd);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("nats.url"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn an_unknown_config_key_stops_jobd_with_status_2_naming_the_key() {
    let (dir, data) = common::data_dir();
    let file = dir.path().join("jobd.toml");
    std::fs::write(
        &file,
        "listen = \"127.0.0.1:0\"\n[engine]\nmax_hosts_in_flite = 5\n",
    )
    .unwrap();
    for command in [&["serve"][..], &["migrate"]] {
        let mut cmd = jobd(&data);
        cmd.args(command).arg("--config").arg(&file);
        let out = run(cmd);
        assert_eq!(out.status.code(), Some(2), "{command:?}");
        let err = text(&out.stderr);
        assert!(err.contains("engine.max_hosts_in_flite"), "{err}");
    }
    // The same file through JOBD_CONFIG.
    let mut cmd = jobd(&data);
    cmd.arg("serve").env("JOBD_CONFIG", &file);
    let out = run(cmd);
    assert_eq!(out.status.code(), Some(2));
    assert!(!data.exists(), "nothing is created on a config error");
}

#[test]
fn a_bad_value_stops_jobd_with_status_2_naming_the_knob() {
    let (dir, data) = common::data_dir();
    let mut cmd = jobd(&data);
    cmd.arg("serve")
        .env("JOBD_ENGINE_MAX_HOSTS_IN_FLIGHT", "many");
    let out = run(cmd);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("engine.max_hosts_in_flight"), "{err}");
    assert!(err.contains("JOBD_ENGINE_MAX_HOSTS_IN_FLIGHT"), "{err}");

    let file = dir.path().join("jobd.toml");
    std::fs::write(&file, "[ssh]\ntrust_on_first_use = \"sometimes\"\n").unwrap();
    let mut cmd = jobd(&data);
    cmd.arg("serve").arg("--config").arg(&file);
    let out = run(cmd);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("ssh.trust_on_first_use"));

    let mut cmd = jobd(&data);
    cmd.arg("serve").env("JOBD_LISTEN", "not-an-address");
    let out = run(cmd);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("invalid listen"));

    let mut cmd = jobd(&data);
    cmd.arg("serve")
        .arg("--config")
        .arg(dir.path().join("missing.toml"));
    let out = run(cmd);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("missing.toml"));
}

#[test]
fn migrate_creates_the_database_and_reports_the_schema_up_to_date() {
    let (_dir, data) = common::data_dir();
    for _ in 0..2 {
        let mut cmd = jobd(&data);
        cmd.arg("migrate");
        let out = run(cmd);
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert!(
            text(&out.stdout).contains("schema up to date"),
            "{}",
            text(&out.stdout)
        );
    }
    assert!(data.join("jobd.db").exists());
}

#[test]
fn token_create_names_an_unknown_user_or_team() {
    let (_dir, data) = common::data_dir();
    let mut cmd = jobd(&data);
    cmd.args([
        "token", "create", "--user", "nobody", "--team", "default", "--name", "ci",
    ]);
    let out = run(cmd);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("unknown user `nobody`"),
        "{}",
        text(&out.stderr)
    );
    assert!(text(&out.stdout).is_empty(), "no token is printed");

    let mut cmd = jobd(&data);
    cmd.args([
        "token", "create", "--user", "admin", "--team", "x", "--name", "",
    ]);
    let out = run(cmd);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--name"),
        "{}",
        text(&out.stderr)
    );
}
