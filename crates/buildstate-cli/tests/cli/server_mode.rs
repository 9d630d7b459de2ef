//! The CLI through `buildstate serve` (`BUILDSTATE_SERVER`, `BUILDSTATE_TOKEN`): every
//! read prints what the same command prints against the store itself, every refusal
//! ends with the same message and exit code, and what is new with a server — a token
//! missing, mistyped or short of a scope, a server that does not answer — gets a clear
//! error of its own that never shows the token.

use crate::common::{Env, expect_error, redact_times};

/// Every report but those that count from the clock (elapsed, ETA): two runs a moment
/// apart would differ there, through a server or not.
const REPORTS: &[&str] = &[
    "overview",
    "platforms",
    "os",
    "images",
    "matrix",
    "attention",
    "states",
    "failures",
    "durations",
    "success-rate",
    "platform-durations",
    "excessive-failures",
    "resumable",
    "ready",
    "time-saved",
    "cost",
    "flaky",
];

/// `text` with what may differ between two runs a moment apart through different
/// doors: times, durations counted to now (`145ms`, `4m 05s`, `"duration_ms": 145`), and where the store is.
fn comparable(text: &str, served: &Env, local: &Env) -> String {
    let url = &served.served.as_ref().expect("served").url;
    let text: String = text
        .lines()
        // When a report was computed.
        .map(|l| if l.contains("\"generated_at\"") { "\"generated_at\": …" } else { l })
        .collect::<Vec<_>>()
        .join("\n");
    let text = redact_times(&text)
        .replace(url.as_str(), "<store>")
        .replace(&local.db.display().to_string(), "<store>");
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if !c.is_ascii_digit() {
            out.push(c);
            continue;
        }
        let mut digits = c.to_string();
        while let Some(d) = chars.next_if(char::is_ascii_digit) {
            digits.push(d);
        }
        match chars.peek() {
            Some('s' | 'm' | 'h') => out.push('N'),
            _ if out.ends_with("_ms\": ") => out.push('N'),
            _ => out.push_str(&digits),
        }
    }
    out
}

/// A served store with a build of each kind, seeded through the server.
fn seeded() -> (Env, Env, [String; 3]) {
    let served = Env::served().with_catalog();
    let done = served.build("sm-done");
    served.advance_to(&done, 100);
    served.ok(&["state", "complete", &done, "100"]);
    served.ok(&["meta", "set", &done, "pipeline", "images"]);
    served.ok(&[
        "artifact",
        "add",
        &done,
        "--name",
        "ami",
        "--kind",
        "image",
        "--uri",
        "ami-0123",
        "--region",
        "us-east-1",
    ]);
    let failed = served.build("sm-failed");
    served.advance_to(&failed, 25);
    served.ok(&[
        "state",
        "fail",
        &failed,
        "25",
        "--error",
        "\x1b[31mTASK [selinux] failed\x1b[0m",
        "--type",
        "ansible",
        "--class",
        "persistent",
    ]);
    let cancelled = served.build("sm-cancelled");
    served.ok(&["build", "cancel", &cancelled, "--reason", "not needed"]);
    // The same store, opened directly.
    let local = Env::with_db(served.db.to_str().expect("a UTF-8 path"));
    (served, local, [done, failed, cancelled])
}

#[test]
fn reads_through_the_server_print_what_the_store_prints() {
    let (served, local, [done, failed, cancelled]) = seeded();
    let mut commands: Vec<Vec<String>> = vec![
        vec!["build".into(), "list".into()],
        vec!["build".into(), "list".into(), "--status".into(), "failed".into()],
        vec!["failure".into(), "list".into()],
        vec!["lease".into(), "list".into()],
        vec!["platform".into(), "list".into()],
        vec!["os".into(), "show".into(), "rhel-9.6".into()],
    ];
    for b in [&done, &failed, &cancelled] {
        for what in
            [&["build", "show"][..], &["history"], &["export"], &["artifact", "list"], &["meta", "list"]]
        {
            let mut c: Vec<String> = what.iter().map(|s| (*s).to_owned()).collect();
            c.push(b.clone());
            commands.push(c);
        }
        commands.push(vec!["resume".into(), b.clone()]);
    }
    for r in REPORTS {
        commands.push(vec!["report".into(), (*r).into()]);
        commands.push(vec!["report".into(), (*r).into(), "--format".into(), "csv".into()]);
    }
    for c in commands {
        for json in [false, true] {
            let mut args: Vec<&str> = c.iter().map(String::as_str).collect();
            if json && !args.contains(&"csv") {
                args.push("--json");
            }
            let (through, direct) = (served.run(&args), local.run(&args));
            let seen = |t: &str| comparable(t, &served, &local);
            assert_eq!(
                (through.code, seen(&through.stdout), seen(&through.stderr)),
                (direct.code, seen(&direct.stdout), seen(&direct.stderr)),
                "buildstate {args:?} through the server and against the store"
            );
        }
    }
}

#[test]
fn refusals_through_the_server_are_the_stores_own() {
    let (served, local, [done, failed, cancelled]) = seeded();
    let cases: Vec<Vec<&str>> = vec![
        vec!["build", "show", "nope"],
        vec!["build", "show", "sm-"],
        vec!["state", "complete", &failed, "7"],
        vec!["state", "complete", &failed, "20"],
        vec!["state", "start", &cancelled, "0"],
        vec!["rewind", &failed, "--to", "50", "--reason", "x"],
        vec!["retry", &failed],
        vec!["build", "create", "--platform", "gcp", "--os", "rhel-9.6", "--image", "base"],
        vec!["meta", "get", &done, "missing"],
        vec!["failure", "resolve", &failed, "--failure", "9", "--notes", "x"],
        vec!["image-type", "remove", "base"],
        vec!["token", "revoke", "nobody"],
    ];
    for args in cases {
        let before = local.export(&failed);
        let (through, direct) = (served.run(&args), local.run(&args));
        assert_ne!(direct.code, 0, "{args:?} is refused: {direct:?}");
        expect_error(&through, direct.code, &format!("{args:?} through the server"));
        let seen = |t: &str| comparable(t, &served, &local);
        assert_eq!(seen(&through.stderr), seen(&direct.stderr), "{args:?}: the same words");
        assert_eq!(local.export(&failed), before, "{args:?} changed nothing");
    }
}

#[test]
fn tokens_and_unreachable_servers_get_clear_errors() {
    let served = Env::served().with_catalog();
    let server = served.served.as_ref().expect("served");
    let url = server.url.clone();
    let secret = server.token.clone();
    let read = served.ok(&["token", "create", "--name", "viewer", "--scopes", "read"]).trim().to_owned();
    let run = |vars: &[(&str, &str)], args: &[&str]| {
        let mut c = crate::common::bare_cmd();
        c.env("XDG_DATA_HOME", served.path("client-data"));
        for (k, v) in vars {
            c.env(k, v);
        }
        crate::common::Run::from(c.args(args).output().expect("run buildstate"))
    };
    let list = ["build", "list"];

    let r = run(&[("BUILDSTATE_SERVER", &url)], &list);
    let e = expect_error(&r, 2, "no token");
    assert!(e.contains("refused the request") && e.contains("no valid token"), "{e}");
    assert!(r.stderr.contains("BUILDSTATE_TOKEN"), "the hint says where the token goes: {r:?}");

    let wrong = format!("{}x", &secret[..secret.len() - 1]);
    let r = run(&[("BUILDSTATE_SERVER", &url), ("BUILDSTATE_TOKEN", &wrong)], &list);
    expect_error(&r, 2, "a mistyped token");
    assert!(!r.stderr.contains(&wrong) && !r.stderr.contains(&secret), "never the token: {r:?}");

    let r = run(&[("BUILDSTATE_SERVER", &url), ("BUILDSTATE_TOKEN", &read)], &list);
    assert_eq!(r.code, 0, "a read token reads: {r:?}");
    let create = ["build", "create", "--platform", "aws-commercial", "--os", "rhel-9.6", "--image", "base"];
    let r = run(&[("BUILDSTATE_SERVER", &url), ("BUILDSTATE_TOKEN", &read)], &create);
    let e = expect_error(&r, 2, "a read token writing");
    assert!(e.contains("write scope"), "{e}");
    assert!(served.json(&["build", "list"]).as_array().is_some_and(Vec::is_empty), "nothing was created");

    // From a hostile review: a worker with a read token polled for ever; it stops at once.
    let pipeline = served.write(
        "p.yml",
        "name: ro\nmatrix: {platform: [aws-commercial], os: [rhel-9.6], image: [base]}\nstates:\n  0: {run: 'true'}\n",
    );
    let worker = ["worker", pipeline.to_str().expect("path"), "--exit-when-idle", "--poll", "200ms"];
    let r = run(&[("BUILDSTATE_SERVER", &url), ("BUILDSTATE_TOKEN", &read)], &worker);
    let e = expect_error(&r, 2, "a worker with a read token");
    assert!(e.contains("write scope"), "{e}");
    // What people paste: the header's scheme is forgiven, a stray word is said at once.
    let r = run(&[("BUILDSTATE_SERVER", &url), ("BUILDSTATE_TOKEN", &format!("Bearer {read}"))], &list);
    assert_eq!(r.code, 0, "{r:?}");
    let r = run(&[("BUILDSTATE_SERVER", &url), ("BUILDSTATE_TOKEN", "hunter2")], &list);
    let e = expect_error(&r, 2, "not a token");
    assert!(e.contains("not a buildstate token") && !e.contains("hunter2"), "{e}");

    // From a hostile review: an actor that names a token could name another one.
    let r = run(
        &[
            ("BUILDSTATE_SERVER", &url),
            ("BUILDSTATE_TOKEN", &secret),
            ("BUILDSTATE_ACTOR", "eve via token:admin"),
        ],
        &create,
    );
    let e = expect_error(&r, 2, "a spoofed actor");
    assert!(e.contains("must not name a token"), "{e}");

    // Nothing listens there: the port of a server that was stopped.
    let gone = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let dead = format!("http://{}", gone.local_addr().expect("addr"));
    drop(gone);
    let r = run(&[("BUILDSTATE_SERVER", &dead), ("BUILDSTATE_TOKEN", &secret)], &list);
    let e = expect_error(&r, 6, "an unreachable server");
    assert!(e.contains(&dead), "names the server: {e}");
    assert!(r.stderr.contains("hint: check the URL given by --server"), "{r:?}");

    // A redirect (an http:// URL of an https:// server, say) is said, not followed: the
    // token would be dropped on the way and a write sent twice.
    let redirector = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let moved = format!("http://{}", redirector.local_addr().expect("addr"));
    let target = url.clone();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for mut conn in redirector.incoming().flatten().take(1) {
            let mut buf = [0u8; 4096];
            let _ = conn.read(&mut buf);
            let _ = write!(
                conn,
                "HTTP/1.1 308 Permanent Redirect\r\nLocation: {target}/api/v1/builds\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
    });
    let r = run(&[("BUILDSTATE_SERVER", &moved), ("BUILDSTATE_TOKEN", &secret)], &list);
    let e = expect_error(&r, 6, "a redirect");
    assert!(e.contains("redirects to") && e.contains(&url), "{e}");

    // Not a buildstate server's route (the URL with /api/v1 already on it).
    let r = run(&[("BUILDSTATE_SERVER", &format!("{url}/api/v1")), ("BUILDSTATE_TOKEN", &secret)], &list);
    let e = expect_error(&r, 6, "a wrong path");
    assert!(e.contains("without /api/v1"), "{e}");

    let r = run(&[], &["--server", "", "build", "list"]);
    let e = expect_error(&r, 2, "an empty --server");
    assert!(e.contains("--server is empty"), "{e}");
    for bad in ["ftp://x", "https://user:pw@example.com", "not a url"] {
        let r = run(&[("BUILDSTATE_SERVER", bad), ("BUILDSTATE_TOKEN", &secret)], &list);
        let e = expect_error(&r, 2, bad);
        assert!(e.contains("--server"), "{e}");
        assert!(!r.stderr.contains("pw@"), "{r:?}");
    }

    let r = run(
        &[("BUILDSTATE_SERVER", &url), ("BUILDSTATE_DB", "/tmp/other.db"), ("BUILDSTATE_TOKEN", &secret)],
        &list,
    );
    let e = expect_error(&r, 2, "a server and a store");
    assert!(
        e.contains("both a store") && e.contains("env BUILDSTATE_DB") && e.contains("env BUILDSTATE_SERVER"),
        "{e}"
    );
    // A flag over the environment: --db on the command line wins.
    let other = served.path("other.db");
    let r = run(&[("BUILDSTATE_SERVER", &url)], &["--db", other.to_str().expect("path"), "init"]);
    assert_eq!(r.code, 0, "{r:?}");

    // The config file: the server's URL, and a file holding its token.
    let token_file = served.path("token");
    std::fs::write(&token_file, format!("{secret}\n")).expect("write the token file");
    let config = served.path("config.toml");
    std::fs::write(&config, format!("server = \"{url}\"\ntoken_file = \"{}\"\n", token_file.display()))
        .expect("write the config");
    let r = run(&[("BUILDSTATE_CONFIG", config.to_str().expect("path"))], &list);
    assert_eq!(r.code, 0, "{r:?}");
    // A token file that is not there matters only when the server is used.
    let broken = served.path("broken.toml");
    std::fs::write(&broken, format!("server = \"{url}\"\ntoken_file = \"~/no-such-token\"\n"))
        .expect("write");
    let r = run(&[("BUILDSTATE_CONFIG", broken.to_str().expect("path"))], &list);
    let e = expect_error(&r, 2, "a missing token file");
    assert!(e.contains("token file"), "{e}");
    let r = run(&[("BUILDSTATE_CONFIG", broken.to_str().expect("path"))], &["config", "show"]);
    assert_eq!(r.code, 0, "config show shows it: {r:?}");
    assert!(r.stdout.contains("no-such-token") && !r.stdout.contains('~'), "~ is the home directory: {r:?}");
    let other = served.path("other.db");
    let r = run(
        &[("BUILDSTATE_CONFIG", broken.to_str().expect("path"))],
        &["--db", other.to_str().expect("path"), "build", "list"],
    );
    assert_eq!(r.code, 0, "a local store needs no token: {r:?}");
    let shown = run(&[("BUILDSTATE_CONFIG", config.to_str().expect("path"))], &["config", "show"]);
    assert!(shown.stdout.contains(&url) && !shown.stdout.contains(&secret), "{shown:?}");
}

/// From a hostile review: a runner whose server stops answering stopped its step only
/// when the server came back, so a second runner that took the expired lease over ran
/// the milestone beside it. It stops once its lease would have expired.
#[test]
fn a_runner_cut_off_from_its_server_stops_before_its_lease_expires() {
    let mut env = Env::served().with_catalog();
    let b = env.build("cut-off-1");
    let mut exec =
        env.spawn("exec", &["exec", &b, "0", "--lease-ttl", "3s", "--grace", "1s", "--", "sleep", "60"]);
    assert!(
        crate::common::eventually(std::time::Duration::from_secs(30), || env.show(&b)["attempt_open"]
            == true),
        "the step started: {}",
        exec.output()
    );
    env.served.as_mut().expect("served").process.kill();
    let started = std::time::Instant::now();
    let code = exec.wait(std::time::Duration::from_secs(30));
    assert_eq!(code, 5, "a lost lease is a conflict: {}", exec.output());
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "stopped in time: {:?}",
        started.elapsed()
    );
    assert!(exec.output().contains("lease"), "says why: {}", exec.output());
}

/// From a hostile review: what a local store takes, the server takes too — a step's
/// failure output of megabytes (cut to 64 KiB as locally) and an export of over 4 MiB
/// imported back.
#[test]
fn large_failures_and_documents_go_through_the_server() {
    let env = Env::served().with_catalog();
    let b = env.build("big-1");
    let big = env.path("big.txt");
    std::fs::write(&big, "x".repeat(99).add_lines(50_000)).expect("write");
    let details = env.path("details.json");
    std::fs::write(&details, format!("{{\"log\": \"{}\"}}", "y".repeat(200 * 1024))).expect("write");
    let (at, details_at) = (format!("@{}", big.display()), format!("@{}", details.display()));
    for i in 0..24 {
        let args: &[&str] =
            if i == 0 { &["--error", &at] } else { &["--error", "again", "--details", &details_at] };
        let mut fail = vec!["state", "fail", &b, "0", "--type", "packer", "--class", "transient"];
        fail.extend_from_slice(args);
        env.ok(&fail);
        env.ok(&["retry", &b, "--force", "--reason", "again"]);
    }
    let failures = env.failures(&b);
    let first = failures.iter().map(|f| f["message"].as_str().unwrap_or("").len()).max().unwrap_or(0);
    assert!(first > 60 * 1024 && first <= 64 * 1024, "the long message is cut to 64 KiB: {first}");
    let doc = env.export(&b);
    assert!(doc.len() > 4 * 1024 * 1024, "a document over the 4 MiB of other bodies: {}", doc.len());
    let file = env.path("doc.json");
    std::fs::write(&file, &doc).expect("write the document");
    let r = env.run(&["import", file.to_str().expect("path"), "--replace"]);
    assert_eq!(r.code, 0, "an export imports back through the server: {r:?}");
}

trait Lines {
    fn add_lines(self, n: usize) -> String;
}

impl Lines for String {
    /// `n` lines of `self`.
    fn add_lines(self, n: usize) -> String {
        format!("{self}\n").repeat(n)
    }
}
