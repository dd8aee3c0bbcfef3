//! `cargo xtask bench`, run on the fixture workbook: the benchmark is
//! whatever a lab's `bench.toml` declares (the tool knows no lab by name),
//! a typo in it is an error naming the key, and `--dry-run` shows the plan
//! without building or starting anything. (A real run builds in release
//! mode and takes minutes: `cargo xtask bench --quick` is for a person.)

mod fixture;

use fixture::Workbook;

/// A benchmark declared by the fixture's `01-echo` lab: its own server at
/// two concurrency levels, and wrk at one.
const BENCH_TOML: &str = r#"
generator = "echo-solution"
concurrency = [1, 10]
seconds = 5
quick_seconds = 1

[servers.echo]
package = "echo-solution"

[[series]]
name = "echo"
title = "the echo server"
server = "echo"
path = "/echo/hi"
plot = true

[[series]]
name = "echo-wrk"
title = "the echo server, loaded by wrk"
server = "echo"
path = "/echo/hi"
tool = "wrk"
concurrency = [10]

[[ratios]]
title = "ours / wrk"
of = "echo"
to = "echo-wrk"
"#;

#[test]
fn bench_explains_itself_with_help() {
    let workbook = Workbook::new();
    let help = workbook.run(&["bench", "--help"]);
    assert!(help.success(), "`bench --help` failed:\n{help}");
    for phrase in ["--quick", "--dry-run", "bench.toml", "1, 10, 100 and 1000"] {
        assert!(help.stdout.contains(phrase), "`bench --help` should mention {phrase:?}:\n{help}");
    }
}

#[test]
fn without_a_bench_toml_bench_says_where_it_looks() {
    let workbook = Workbook::new();
    let ran = workbook.run(&["bench", "--dry-run"]);
    assert!(!ran.success(), "no lab declares a benchmark, yet `bench` succeeded:\n{ran}");
    assert!(ran.stderr.contains("bench.toml"), "the error should name bench.toml:\n{ran}");
}

#[test]
fn a_dry_run_lists_the_runs_a_labs_bench_toml_declares() {
    let workbook = Workbook::new();
    workbook.write("labs/01-echo/bench.toml", BENCH_TOML);
    let ran = workbook.run(&["bench", "--dry-run", "--quick"]);
    assert!(ran.success(), "`bench --dry-run` failed:\n{ran}");
    for line in [
        "3 runs of 1 s each",
        "echo                 c=1 ",
        "echo                 c=10 ",
        "echo-wrk",
    ] {
        assert!(ran.stdout.contains(line), "the plan should contain {line:?}:\n{ran}");
    }
    assert!(ran.stdout.contains("nothing was built"), "a dry run builds nothing:\n{ran}");
    assert!(!workbook.path("target/release").exists(), "a dry run must not build:\n{ran}");

    let only = workbook.run(&["bench", "--dry-run", "--only", "echo-wrk"]);
    assert!(only.stdout.contains("1 runs"), "--only keeps one series:\n{only}");
}

#[test]
fn a_typo_in_bench_toml_is_an_error_naming_it() {
    let workbook = Workbook::new();
    workbook.write("labs/01-echo/bench.toml", &BENCH_TOML.replace("plot = true", "plott = true"));
    let ran = workbook.run(&["bench", "--dry-run"]);
    assert!(!ran.success(), "a typo in bench.toml went unnoticed:\n{ran}");
    assert!(ran.stderr.contains("plott"), "the error should name the unknown key:\n{ran}");

    workbook.write(
        "labs/01-echo/bench.toml",
        &BENCH_TOML.replace("server = \"echo\"\npath", "server = \"ech\"\npath"),
    );
    let ran = workbook.run(&["bench", "--dry-run"]);
    assert!(ran.stderr.contains("\"ech\""), "the error should name the unknown server:\n{ran}");
}
