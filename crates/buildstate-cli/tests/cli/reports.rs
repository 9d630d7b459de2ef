//! `buildstate report`: every report in every format on a real store, the JSON pinned,
//! and the mistakes people make with it (a typo'd name, a bad filter, a bad rate).

use serde_json::Value;

use crate::common::Env;

/// Five builds: delivered, delivered after a retry, failed needing a person, running,
/// cancelled; one of them tagged with a pipeline.
fn data() -> Env {
    let env = Env::new().with_catalog();
    let done = env.build("r-done");
    env.advance_to(&done, 100);
    env.ok(&["state", "complete", &done, "100"]);
    let retried = env.build("r-retried");
    env.advance_to(&retried, 20);
    env.ok(&[
        "state",
        "fail",
        &retried,
        "20",
        "--error",
        "=HYPERLINK(\"x\") 429 Too Many Requests",
        "--type",
        "network",
        "--class",
        "transient",
    ]);
    env.ok(&["retry", &retried]);
    env.advance_to_from(&retried, 20, 100);
    env.ok(&["state", "complete", &retried, "100"]);
    let person = env.build("r-person");
    env.advance_to(&person, 45);
    env.ok(&[
        "state",
        "fail",
        &person,
        "45",
        "--error",
        "\x1b[31mTASK [lvm] failed\x1b[0m",
        "--type",
        "ansible",
        "--class",
        "persistent",
    ]);
    let running = env.build("r-running");
    env.advance_to(&running, 30);
    env.ok(&["state", "start", &running, "30"]);
    env.ok(&["meta", "set", &running, "pipeline", "images"]);
    let cancelled = env.build("r-cancelled");
    env.advance_to(&cancelled, 10);
    env.ok(&["build", "cancel", &cancelled, "--reason", "superseded"]);
    env
}

/// Times and durations differ from run to run: replaced for snapshots.
fn stable(mut v: Value) -> Value {
    fn walk(v: &mut Value, key: &str) {
        match v {
            Value::Object(m) => m.iter_mut().for_each(|(k, v)| walk(v, k)),
            Value::Array(a) => a.iter_mut().for_each(|v| walk(v, key)),
            Value::String(s) if s.len() >= 20 && s.as_bytes()[4] == b'-' && s.contains('T') => {
                *s = "[time]".into()
            }
            Value::Number(_) if key.ends_with("_ms") => *v = "[ms]".into(),
            _ => {}
        }
    }
    walk(&mut v, "");
    v
}

#[test]
fn every_report_in_every_format() {
    let env = data();
    let names: Vec<String> = env
        .json(&["report", "--list"])
        .as_array()
        .expect("a list")
        .iter()
        .map(|r| r["name"].as_str().expect("a name").to_owned())
        .collect();
    assert_eq!(names.len(), 19, "{names:?}");
    for name in &names {
        let v = env.json(&["report", name]);
        assert_eq!(v["report"], name.as_str());
        let columns: Vec<&str> = v["columns"]
            .as_array()
            .expect("columns")
            .iter()
            .map(|c| c["key"].as_str().expect("key"))
            .collect();
        for row in v["rows"].as_array().expect("rows") {
            let keys: Vec<&str> = row.as_object().expect("a row object").keys().map(String::as_str).collect();
            assert_eq!(keys.len(), columns.len(), "{name}: {row}");
        }
        let csv = env.ok(&["report", name, "--format", "csv"]);
        assert_eq!(
            csv.lines().next(),
            Some(columns.join(",").as_str()),
            "{name}: the CSV header is the column keys"
        );
        assert_eq!(
            csv.lines().count(),
            1 + v["rows"].as_array().map_or(0, Vec::len),
            "{name}: one CSV line per row"
        );
        let table = env.ok(&["report", name]);
        assert!(!table.trim().is_empty(), "{name}: the table says something");
        assert!(!table.contains('\x1b'), "{name}: no terminal escapes reach the table");
    }
}

#[test]
fn reports_answer_the_questions() {
    let env = data();
    let o = env.json(&["report", "overview"]);
    let row = &o["rows"][0];
    assert_eq!(
        (row["total"].as_u64(), row["completed"].as_u64(), row["failed"].as_u64()),
        (Some(5), Some(2), Some(1))
    );
    assert_eq!(
        (row["running"].as_u64(), row["cancelled"].as_u64(), row["needs_person"].as_u64()),
        (Some(1), Some(1), Some(1))
    );

    let a = env.json(&["report", "attention"]);
    assert_eq!(a["rows"][0]["build"], "r-person");
    assert_eq!(a["rows"][0]["command"], "buildstate retry r-person --force --reason \"…\"");
    assert!(!a["rows"][0]["last_failure_message"].as_str().expect("a message").contains('\x1b'));

    let running = env.json(&["report", "running"]);
    assert_eq!(running["rows"][0]["build"], "r-running");
    assert_eq!(running["rows"][0]["state"], 30);
    assert!(running["rows"][0]["eta"].is_string(), "an ETA from the other builds' history: {running}");

    let saved = env.json(&["report", "time-saved"]);
    assert_eq!(saved["rows"][0]["build"], "r-retried", "{saved}");
    assert_eq!(saved["rows"][0]["resumes"], 1);

    let piped = env.json(&["report", "overview", "--pipeline", "images"]);
    assert_eq!(piped["rows"][0]["total"], 1);
    let only = env.json(&["report", "platforms", "--status", "failed,cancelled"]);
    assert_eq!(only["rows"][0]["total"], 2);
    let later = env.json(&["report", "overview", "--since", &jiff::Timestamp::now().to_string()]);
    assert_eq!(later["rows"][0]["total"], 0);
    let recent = env.json(&["report", "overview", "--since", "1d"]);
    assert_eq!(recent["rows"][0]["total"], 5);
    let from = env.json(&["report", "resumable", "--from", "45"]);
    assert_eq!(
        from["rows"].as_array().map(Vec::len),
        Some(0),
        "a build that needs a person is not resumable: {from}"
    );
}

#[test]
fn json_is_pinned() {
    let env = data();
    for name in ["overview", "attention", "failures", "states", "matrix"] {
        let v = stable(env.json(&["report", name]));
        insta::assert_json_snapshot!(format!("report_{name}"), v);
    }
}

#[test]
fn tables_keep_build_numbers_and_commands_whole_and_show_bidi_controls() {
    let env = data();
    let long = "rhel-9.6-base-aws-commercial-a-rather-long-build-number-for-a-table-cell";
    env.build(long);
    env.advance_to(long, 10);
    env.ok(&["state", "fail", long, "10", "--error", "evil \u{202e}txt.exe", "--class", "persistent"]);
    let out = env.ok(&["report", "attention"]);
    assert!(out.contains(&format!("buildstate retry {long} --force --reason")), "{out}");
    assert!(!out.contains('\u{202e}') && out.contains("\\u{202e}"), "{out}");
    // A tab in a message does not push the columns apart.
    let tabbed = env.build("r-tabbed");
    env.advance_to(&tabbed, 5);
    env.ok(&["state", "fail", &tabbed, "5", "--error", "col1\tcol2", "--class", "persistent"]);
    let out = env.ok(&["report", "attention"]);
    assert!(!out.contains('\t'), "no raw tab in a table: {out:?}");
}

#[test]
fn csv_defuses_formulas_from_build_output() {
    let env = data();
    let csv = env.ok(&["report", "failures", "--format", "csv"]);
    assert!(csv.contains("\"'=HYPERLINK(\"\"x\"\") 429 Too Many Requests\""), "{csv}");
}

#[test]
fn mistakes_get_clear_errors() {
    let env = data();
    let e = env.fails(&["report", "overveiw"], 2);
    assert!(e.contains("`overveiw` is not a report") && e.contains("overview"), "{e}");
    let e = env.fails(&["report", "overview", "--since", "yesterday"], 2);
    assert!(e.contains("neither a time nor a duration"), "{e}");
    let e = env.fails(&["report", "overview", "--status", "bogus"], 2);
    assert!(e.contains("bogus"), "{e}");
    let e = env.fails(&["report", "overview", "--from", "30"], 2);
    assert!(e.contains("--from is an option of `report resumable`"), "{e}");
    let e = env.fails(&["report", "overview", "--format", "xml"], 2);
    assert!(e.contains("xml"), "{e}");
    // The reports on an empty store say so.
    let empty = Env::new();
    empty.ok(&["init"]);
    let out = empty.ok(&["report", "running"]);
    assert_eq!(out.trim(), "nothing for `report running`");
    let out = env.ok(&["report", "running", "--since", &jiff::Timestamp::now().to_string()]);
    assert_eq!(out.trim(), "nothing for `report running` under these filters");
    // From a hostile review: filters that can only select nothing are mistakes too.
    let e = env.fails(&["report", "running", "--status", "completed"], 2);
    assert!(e.contains("report running shows running builds only: --status completed selects none"), "{e}");
    let e = env.fails(&["report", "resumable", "--status", "completed,cancelled"], 2);
    assert!(e.contains("shows failed builds only"), "{e}");
    env.ok(&["report", "attention", "--status", "failed,completed"]);
    let e = env.fails(&["report", "overview", "--since", "2099-01-01"], 2);
    assert!(e.contains("--since 2099-01-01") && e.contains("is in the future"), "{e}");
    let e = env.fails(&["report", "overview", "--pipeline", "imagse"], 3);
    assert!(e.contains("no build was run by pipeline `imagse`"), "{e}");
    env.ok(&["report", "overview", "--pipeline", "images"]);
    let e = env.fails(&["report", "resumable", "--from", "7"], 4);
    assert!(e.contains("--from 7 is not a milestone of the default catalog"), "{e}");
    env.ok(&["report", "resumable", "--from", "45"]);
    let e = env.fails(&["report", "excessive-failures", "--threshold", "-1"], 2);
    assert!(e.contains("-1") && !e.contains("unexpected argument"), "{e}");
    let e = env.fails(&["report", "overview", "--since", "0d"], 2);
    assert!(e.contains("give 1d or more"), "{e}");
    // A name the catalog does not have is a mistake, not a row of zeros.
    let e = env.fails(&["report", "overview", "--platform", "aws-comercial"], 3);
    assert!(e.contains("no platform `aws-comercial`"), "{e}");
    let r = env.run(&["report", "overview", "--platform", "aws-comercial"]);
    assert!(r.stderr.contains("did you mean `aws-commercial`?"), "{}", r.stderr);
    let e = env.fails(&["report", "overview", "--threshold", "3"], 2);
    assert!(e.contains("--threshold is an option of `report excessive-failures`"), "{e}");
    let e = env.fails(&["report", "overview", "--json", "--format", "csv"], 2);
    assert!(e.contains("--json and --format disagree"), "{e}");
}

#[test]
fn cost_rates_come_from_the_config_file() {
    let env = data();
    let config = env.path("bs.toml");
    std::fs::write(&config, "[cost]\naws-commercial = 0.68\n").expect("write config");
    let v = env.json(&["--config", config.to_str().expect("utf-8"), "report", "cost"]);
    let row = &v["rows"][0];
    assert_eq!(row["platform"], "aws-commercial");
    assert_eq!(row["rate"], 0.68);
    assert!(v["summary"]["cost"].is_number(), "{v}");
    let shown = env.json(&["--config", config.to_str().expect("utf-8"), "config", "show"]);
    assert_eq!(shown["cost"]["aws-commercial"], 0.68, "config show lists the rates: {shown}");
    let no_rate = env.json(&["report", "cost"]);
    assert!(no_rate["notes"].to_string().contains("under [cost] in the config file"), "{no_rate}");
    std::fs::write(&config, "[cost]\naws-comercial = 0.5\n").expect("write config");
    let typo = env.json(&["--config", config.to_str().expect("utf-8"), "report", "cost"]);
    let notes = typo["notes"].to_string();
    assert!(notes.contains("did you mean `aws-commercial`"), "{notes}");

    std::fs::write(&config, "[cost]\naws-commercial = \"cheap\"\n").expect("write config");
    let e = env.fails(&["--config", config.to_str().expect("utf-8"), "report", "cost"], 2);
    assert!(e.contains("bs.toml:2:18") && e.contains("expected an hourly rate"), "{e}");
    std::fs::write(&config, "[cost]\naws-commercial = -1\n").expect("write config");
    let e = env.fails(&["--config", config.to_str().expect("utf-8"), "report", "cost"], 2);
    assert!(e.contains("not an hourly rate"), "{e}");
}
