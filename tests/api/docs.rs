//! The wiki kept true by tests: the client examples of wiki/clients.md run
//! against a real server, the metrics list of wiki/operations.md is what
//! `/metrics` serves, and wiki/README.md lists every page.

use std::collections::BTreeSet;
use std::process::Command;

use crate::helpers::*;

fn wiki(page: &str) -> String {
    std::fs::read_to_string(format!("{}/wiki/{page}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// The fenced code blocks of `text` whose info string is `lang`.
fn blocks(text: &str, lang: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        match &mut current {
            None if line.trim_end() == format!("```{lang}") => current = Some(String::new()),
            None => {}
            Some(_) if line.trim_end() == "```" => out.extend(current.take()),
            Some(code) => {
                code.push_str(line);
                code.push('\n');
            }
        }
    }
    out
}

#[test]
fn the_client_examples_in_clients_md_run_against_the_server() {
    let app = spawn_app();
    let url = format!("http://{}", app.addr);
    let page = wiki("clients.md");
    let dir = std::env::temp_dir().join(format!("{}-clients", app.name));
    std::fs::create_dir_all(&dir).unwrap();
    let js = dir.join("client.mjs");
    for (lang, expected) in [
        ("sh", "curl: ok"),
        ("python", "python: ok"),
        ("js", "node: ok"),
    ] {
        let found = blocks(&page, lang);
        assert_eq!(found.len(), 1, "one ```{lang} block in wiki/clients.md");
        let code = &found[0];
        let mut command = match lang {
            "sh" => {
                let mut c = Command::new("bash");
                c.arg("-c").arg(format!("set -euo pipefail\n{code}"));
                c
            }
            "python" => {
                let mut c = Command::new("python3");
                c.arg("-c").arg(code);
                c
            }
            _ => {
                std::fs::write(&js, code).unwrap();
                let mut c = Command::new("node");
                c.arg(&js);
                c
            }
        };
        let out = command.env("PROFITEER_URL", &url).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains(expected),
            "the {lang} example failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The metric names mentioned in `text`: `profiteer_x_{a,b}_total` is
/// `profiteer_x_a_total` and `profiteer_x_b_total`; `profiteer_y{method}` is
/// `profiteer_y` with a label.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(start) = rest.find("profiteer_") {
        let tail = &rest[start..];
        let end = tail
            .find(|c: char| {
                !(c.is_ascii_lowercase() || c == '_' || c == '{' || c == '}' || c == ',')
            })
            .unwrap_or(tail.len());
        let word = &tail[..end];
        match (word.find('{'), word.find('}')) {
            (Some(open), Some(close))
                if close > open
                    && word[open + 1..close]
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c == ',' || c == '_')
                    && !word[open..close].contains('=') =>
            {
                let suffix: String = word[close + 1..]
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                    .collect();
                if suffix.is_empty() {
                    // `name{method,outcome}`: labels, not alternatives.
                    names.insert(word[..open].to_string());
                } else {
                    for alt in word[open + 1..close].split(',') {
                        names.insert(format!("{}{alt}{suffix}", &word[..open]));
                    }
                }
            }
            _ => {
                let plain: String = word
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                    .collect();
                names.insert(plain.trim_end_matches('_').to_string());
            }
        }
        rest = &tail[end.max(1)..];
    }
    names
}

#[test]
fn the_metrics_listed_in_operations_md_are_the_ones_served() {
    let app = spawn_app();
    let served: BTreeSet<String> = app
        .get("/metrics")
        .text()
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect();
    assert!(served.len() > 10, "{served:?}");
    let page = wiki("operations.md");
    let section = page
        .split("## Metrics")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("operations.md has a Metrics section");
    let listed = metric_names(section);
    let missing: Vec<_> = served.difference(&listed).collect();
    let extra: Vec<_> = listed.difference(&served).collect();
    assert!(
        missing.is_empty(),
        "served but not in wiki/operations.md: {missing:?}"
    );
    assert!(
        extra.is_empty(),
        "in wiki/operations.md but not served: {extra:?}"
    );
}

#[test]
fn the_wiki_index_lists_every_page() {
    let index = wiki("README.md");
    let dir = format!("{}/wiki", env!("CARGO_MANIFEST_DIR"));
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name.ends_with(".md") && name != "README.md" {
            assert!(
                index.contains(&format!("]({name})")),
                "wiki/README.md does not list {name}"
            );
        }
    }
}

/// The webhook receivers of wiki/clients.md, run as they are with the
/// `standardwebhooks` library of their language, each get and verify an
/// event profiteer sends them.
#[test]
fn the_webhook_receivers_in_clients_md_verify_what_profiteer_sends() {
    use std::io::BufRead;
    use std::sync::{Arc, Mutex};
    let out = Command::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scripts/webhook-receivers.sh"
    ))
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let paths = String::from_utf8(out.stdout).unwrap();
    let mut paths = paths.lines();
    let (python, node_modules) = (paths.next().unwrap(), paths.next().unwrap());
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let page = wiki("clients.md");
    let dir = std::env::temp_dir().join(format!("profiteer-receivers-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (lang, expected) in [
        ("python receiver", "python receiver: verified user.created"),
        ("js receiver", "node receiver: verified user.created"),
    ] {
        let found = blocks(&page, lang);
        assert_eq!(found.len(), 1, "one ```{lang} block in wiki/clients.md");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut command = if lang.starts_with("python") {
            let mut c = Command::new(python);
            c.arg("-c").arg(&found[0]);
            c
        } else {
            let file = dir.join("receiver.cjs");
            std::fs::write(&file, &found[0]).unwrap();
            let mut c = Command::new("node");
            c.arg(file).env("NODE_PATH", node_modules);
            c
        };
        let mut child = command
            .env("PORT", port.to_string())
            .env("WEBHOOK_SECRET", secret)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let printed = Arc::new(Mutex::new(String::new()));
        let stdout = child.stdout.take().unwrap();
        let sink = printed.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                sink.lock().unwrap().push_str(&format!("{line}\n"));
            }
        });
        let app = spawn_with(Options {
            ini: format!("[WEBHOOKS]\nrx = http://127.0.0.1:{port}/\nrx.SECRET = {secret}\n"),
            ..Options::default()
        });
        app.register("receiverfan");
        let verified = app.eventually(std::time::Duration::from_secs(30), || {
            printed.lock().unwrap().contains(expected)
        });
        let _ = child.kill();
        let _ = child.wait();
        assert!(
            verified,
            "{lang}: {}\nserver log:\n{}",
            printed.lock().unwrap(),
            app.logs()
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
