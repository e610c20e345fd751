//! A bad configuration stops start-up with one message naming the setting, never a panic.

use std::process::Command;

/// Runs the real server binary with `vars` and returns its exit status and standard error.
fn start_server(vars: &[(&str, &str)]) -> (std::process::ExitStatus, String) {
    // In a directory of its own: a start-up that gets as far as the embedded provider creates
    // its files under `target/oidc-session/` there.
    let dir = std::env::temp_dir().join(format!("oidc-startup-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_server"))
        .current_dir(&dir)
        .env_clear()
        .env("LEPTOS_OUTPUT_NAME", "oidc-session")
        .env("LEPTOS_SITE_ADDR", "127.0.0.1:0")
        .env("EMBEDDED_IDP_ADDR", "127.0.0.1:0")
        .env("SESSION_STORE", "memory")
        .envs(vars.iter().copied())
        .output()
        .expect("the server binary runs");
    (output.status, String::from_utf8_lossy(&output.stderr).into_owned())
}

#[test]
fn each_bad_setting_stops_start_up_with_a_message_naming_it() {
    // Port 9 (discard) on loopback: nothing listens there, so discovery fails at once.
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("OIDC_ISSUER", "http://127.0.0.1:9"), ("OIDC_CLIENT_ID", "app")], "error: OIDC_ISSUER: discovery at"),
        (&[("OIDC_ISSUER", "not a url"), ("OIDC_CLIENT_ID", "app")], "error: OIDC_ISSUER:"),
        (&[("OIDC_ISSUER", "https://idp.example")], "error: OIDC_CLIENT_ID: is required"),
        (&[("APP_URL", "localhost:3000")], "error: APP_URL:"),
        (&[("SESSION_STORE", "redis://127.0.0.1:9/0")], "error: SESSION_STORE: "),
        (&[("SESSION_SEAL_KEYS", "too-short")], "error: SESSION_SEAL_KEYS:"),
        // With the embedded provider, the app must be one of its clients, with its secret.
        (&[("OIDC_CLIENT_ID", "no-such-client")], "error: OIDC_CLIENT_ID: no-such-client: no such client"),
        (&[("OIDC_CLIENT_SECRET", "wrong")], "error: OIDC_CLIENT_SECRET: not the secret"),
    ];
    for (vars, expected) in cases {
        let (status, stderr) = start_server(vars);
        assert_eq!(status.code(), Some(1), "{vars:?}: {stderr}");
        assert!(stderr.contains(expected), "{vars:?}: expected {expected:?} in {stderr}");
        assert!(!stderr.contains("panicked"), "{vars:?}: {stderr}");
    }
}
