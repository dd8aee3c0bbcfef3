//! `cargo xtask bench`, run on the fixture workbook: the benchmark is the
//! example `bench` of whichever lab's solution has one (the tool knows no lab
//! by name); the verb builds it in release mode with the `bench` feature,
//! passes its flags on, and points it at the book's results folder.

mod fixture;

use fixture::Workbook;

/// A benchmark for the fixture's `01-echo` lab: it prints the flags it got
/// and writes a results file where `--out` says.
const BENCH: &str = r#"//! A stand-in benchmark.
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    println!("bench got: {}", args.join(" "));
    if let Some(at) = args.iter().position(|a| a == "--out") {
        let dir = std::path::Path::new(&args[at + 1]);
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("results.md"), "measured\n").unwrap();
    }
}
"#;

const FEATURE: &str = r#"
[features]
bench = []

[[example]]
name = "bench"
path = "examples/bench.rs"
required-features = ["bench"]
"#;

#[test]
fn bench_explains_itself_with_help() {
    let workbook = Workbook::new();
    let help = workbook.run(&["bench", "--help"]);
    assert!(help.success(), "`bench --help` failed:\n{help}");
    for phrase in ["--quick", "--dry-run", "1, 10, 100 and 1000"] {
        assert!(help.stdout.contains(phrase), "`bench --help` should mention {phrase:?}:\n{help}");
    }
}

#[test]
fn without_a_bench_example_bench_says_where_it_looks() {
    let workbook = Workbook::new();
    let ran = workbook.run(&["bench", "--dry-run"]);
    ran.assert_failed_saying(&["examples/bench.rs"]); // where it looks
}

#[test]
fn bench_runs_the_labs_bench_example_and_writes_into_the_book() {
    let workbook = Workbook::new();
    workbook.write("solutions/01-echo/examples/bench.rs", BENCH);
    let manifest = workbook.read("solutions/01-echo/Cargo.toml");
    workbook.write("solutions/01-echo/Cargo.toml", &(manifest + FEATURE));

    let ran = workbook.run(&["bench", "--quick", "--only", "echo"]);
    assert!(ran.success(), "`bench --quick` failed:\n{ran}");
    assert!(
        ran.stdout.contains("bench got: --quick --only echo --out "),
        "flags not passed on:\n{ran}"
    );
    assert_eq!(workbook.read("book/src/bench/results.md"), "measured\n", "nothing written:\n{ran}");

    let dry = workbook.run(&["bench", "--dry-run"]);
    assert!(dry.stdout.contains("bench got: --dry-run\n"), "a dry run writes nothing:\n{dry}");
}
